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
  // Written by the batch, without close: by the writer thread, which starts with the first batch.
  const c = createSqliteResponseStore(path);
  const deadline = Date.now() + 5_000;
  while ((await c.get("resp_3", "key:k", Date.now())) === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  expect(await c.get("resp_3", "key:k", Date.now())).toBeDefined();
  await b.close();
  await c.close();
});

it("ends as the last call left it when a record is replaced or deleted while its batch is being written", async () => {
  const path = join(mkdtempSync(join(tmpdir(), "sy-resp-")), "responses.db");
  const a = createSqliteResponseStore(path);
  await a.put(record("resp_r", "key:k"));
  await a.put(record("resp_d", "key:k"));
  await new Promise((r) => setTimeout(r, 60)); // the batch has gone to the writer thread
  await a.put({ ...record("resp_r", "key:k"), conversation: [] });
  expect(await a.delete("resp_d", "key:k")).toBe(true);
  expect(await a.get("resp_d", "key:k", Date.now())).toBeUndefined();
  expect((await a.get("resp_r", "key:k", Date.now()))?.conversation).toEqual([]);
  await a.close();

  const b = createSqliteResponseStore(path);
  expect(await b.get("resp_d", "key:k", Date.now())).toBeUndefined();
  expect((await b.get("resp_r", "key:k", Date.now()))?.conversation).toEqual([]);
  await b.close();
});

it("stores a response given as JSON as that JSON, read back as the object", async () => {
  const path = join(mkdtempSync(join(tmpdir(), "sy-resp-")), "responses.db");
  const a = createSqliteResponseStore(path);
  const response = { id: "resp_j", object: "response", output: [{ type: "message", content: [{ type: "output_text", text: 'a "quoted" \u2028 text' }] }] };
  await a.put({ ...record("resp_j", "key:k"), response, responseJson: JSON.stringify(response) });
  await a.close();

  const b = createSqliteResponseStore(path);
  const stored = await b.get("resp_j", "key:k", Date.now());
  expect(stored?.response).toEqual(response);
  expect(stored).not.toHaveProperty("responseJson");
  await b.close();
});
