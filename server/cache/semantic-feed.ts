import { connectRedis } from "../redis/connect.ts";

/** One prompt vector a gateway stored, for the others to index. */
export interface SemanticRecord {
  partition: string;
  key: string;
  vector: Float32Array;
}

/**
 * Shares the semantic index between instances: each instance keeps its own
 * in-process index, and every vector it stores is also appended to a Redis
 * stream that all instances read (every `pollMs`, and from the start of the
 * stream when they start). Cost: every instance holds every vector (the
 * index's bytes per entry, times instances), and one XADD per stored
 * answer; the stream is trimmed to about `maxEntries`.
 */
export interface SemanticFeed {
  publish(r: SemanticRecord): void;
  close(): Promise<void>;
}

export async function createRedisSemanticFeed(options: {
  url: string;
  prefix: string;
  maxEntries: number;
  commandTimeoutMs: number;
  pollMs?: number;
  onRecord: (r: SemanticRecord) => void;
}): Promise<SemanticFeed> {
  const stream = `{${options.prefix}}:csem`;
  const redis = await connectRedis(options.url, options.commandTimeoutMs);
  /** Our own records come back through the stream too; they are already indexed. */
  const mine = new Set<string>();
  let last = "0-0";
  let polling = false;

  async function poll(): Promise<void> {
    if (polling || redis.status !== "ready") return;
    polling = true;
    try {
      for (;;) {
        const res = (await redis.xreadBuffer("COUNT", 1000, "STREAMS", stream, last)) as [Buffer, [Buffer, Buffer[]][]][] | null;
        const entries = res?.[0]?.[1] ?? [];
        for (const [id, fields] of entries) {
          last = id.toString();
          if (mine.delete(last)) continue;
          const f = new Map<string, Buffer>();
          for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i]!.toString(), fields[i + 1]!);
          const p = f.get("p");
          const k = f.get("k");
          const v = f.get("v");
          if (p === undefined || k === undefined || v === undefined || v.byteLength % 4 !== 0) continue;
          // Copy: the Buffer may not be aligned for a Float32Array view.
          const vector = new Float32Array(v.byteLength / 4);
          for (let i = 0; i < vector.length; i++) vector[i] = v.readFloatLE(i * 4);
          options.onRecord({ partition: p.toString(), key: k.toString(), vector });
        }
        if (entries.length < 1000) break;
      }
    } catch {
      // Redis is away: the next poll picks up where this one stopped.
    } finally {
      polling = false;
    }
  }

  await poll();
  const timer = setInterval(() => void poll(), options.pollMs ?? 250);
  timer.unref();

  return {
    publish(r) {
      const v = Buffer.alloc(r.vector.length * 4);
      for (let i = 0; i < r.vector.length; i++) v.writeFloatLE(r.vector[i]!, i * 4);
      redis
        .xadd(stream, "MAXLEN", "~", String(options.maxEntries), "*", "p", r.partition, "k", r.key, "v", v)
        .then((id) => {
          if (id !== null) mine.add(id);
          if (mine.size > 10_000) mine.clear(); // an instance that cannot read its own records back: bound the set
        })
        .catch(() => undefined);
    },
    async close() {
      clearInterval(timer);
      redis.disconnect();
    },
  };
}
