import type { LookupAddress } from "node:dns";
import { describe, expect, it } from "vitest";
import { guardedLookup, isForbiddenAddress } from "../server/providers/shared/address-guard.ts";
import { startTestGateway } from "./support/gateway.ts";

// No provider call may reach a cloud metadata service, however its base URL
// is spelled or wherever its name resolves: the outbound client checks each
// address it is about to dial, and literal addresses are refused at start.

describe("the outbound address guard", () => {
  it("knows the link-local and metadata addresses, and leaves loopback and private ranges alone", () => {
    for (const ip of ["169.254.169.254", "169.254.0.1", "fe80::1", "fd00:ec2::254", "100.100.100.200", "::ffff:169.254.169.254"]) expect(isForbiddenAddress(ip), ip).toBe(true);
    for (const ip of ["127.0.0.1", "::1", "10.0.0.5", "192.168.1.20", "172.16.0.1", "8.8.8.8", "2001:db8::1", "not an ip"]) expect(isForbiddenAddress(ip), ip).toBe(false);
  });

  it("fails a lookup that resolves to a forbidden address, for one address or all of them", async () => {
    const answers: Record<string, LookupAddress[]> = {
      "model.internal": [{ address: "10.1.2.3", family: 4 }],
      "rebound.example": [{ address: "93.184.216.34", family: 4 }, { address: "169.254.169.254", family: 4 }],
    };
    const lookup = guardedLookup((host, options, cb) => {
      const list = answers[host] ?? [];
      if ((options as { all?: boolean }).all) cb(null, list);
      else cb(null, list[0]!.address, list[0]!.family);
    });
    const run = (host: string, all: boolean) =>
      new Promise<unknown>((resolve, reject) => lookup(host, { all } as never, (err, address) => (err ? reject(err) : resolve(address))));
    await expect(run("model.internal", false)).resolves.toBe("10.1.2.3");
    await expect(run("model.internal", true)).resolves.toEqual(answers["model.internal"]);
    await expect(run("rebound.example", true)).rejects.toMatchObject({ code: "EADDRNOTALLOWED", message: /rebound\.example resolves to 169\.254\.169\.254/ });
  });

  it("refuses a configured provider whose base URL is a literal metadata address", async () => {
    for (const baseUrl of ["http://169.254.169.254/latest", "http://[::ffff:169.254.169.254]/v1", "http://[fe80::1]/v1"]) {
      await expect(startTestGateway({ providers: [{ id: "meta", type: "openai-compatible", baseUrl, models: ["m"] }] }), baseUrl).rejects.toThrow(/link-local or cloud metadata/);
    }
  });
});
