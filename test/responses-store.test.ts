import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { createSqliteResponseStore, type StoredResponse } from "../server/responses/store.ts";

// The embedded store of responses: batched writes survive a restart, reads
// see unwritten ones at once, and a tenant sees only its own.

const record = (id: string, scope: string, ttlMs = 60_000): StoredResponse => ({
  id, scope, createdAt: Date.now(), expiresAt: Date.now() + ttlMs, response: { id, object: "response" }, inputItems: [], conversation: [{ role: "ROLE_USER" }],
});

it("keeps responses across a restart, per tenant, until they expire", async () => {
  const path = join(mkdtempSync(join(tmpdir(), "sy-resp-")), "responses.db");
  const a = createSqliteResponseStore(path);
  await a.put(record("resp_1", "customer:a"));
  await a.put(record("resp_2", "customer:b"));
  await a.put(record("resp_old", "customer:a", -1));
  // Not yet written: served from memory, and only to its own tenant.
  expect((await a.get("resp_1", "customer:a", Date.now()))?.conversation).toHaveLength(1);
  expect(await a.get("resp_1", "customer:b", Date.now())).toBeUndefined();
  expect(await a.get("resp_old", "customer:a", Date.now())).toBeUndefined();
  expect(await a.delete("resp_2", "customer:a")).toBe(false);
  expect(await a.delete("resp_2", "customer:b")).toBe(true);
  await a.close();

  const b = createSqliteResponseStore(path);
  expect((await b.get("resp_1", "customer:a", Date.now()))?.response).toEqual({ id: "resp_1", object: "response" });
  expect(await b.get("resp_2", "customer:b", Date.now())).toBeUndefined();
  expect(await b.get("resp_1", "customer:b", Date.now())).toBeUndefined();
  await b.put(record("resp_3", "key:k"));
  await new Promise((r) => setTimeout(r, 120)); // written by the batch, without close
  const c = createSqliteResponseStore(path);
  expect(await c.get("resp_3", "key:k", Date.now())).toBeDefined();
  await b.close();
  await c.close();
});
