import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import { connectRedis } from "../redis/connect.ts";
import { clampPageSize, decodePageToken, encodePageToken, isAfter, rateState, type Tats } from "./store-memory.ts";
import type {
  Customer,
  GovernanceStore,
  LeaseChargeInput,
  ListPage,
  RefusalReason,
  ReserveInput,
  ReserveResult,
  Scope,
  SettleInput,
  SpendState,
  Team,
  VirtualKey,
} from "./types.ts";

export interface RedisStoreOptions {
  url: string;
  /** Namespace; every key is "{<prefix>}:…" so all of them share one cluster slot. Default "sy". */
  prefix?: string | undefined;
  /** A command without a reply by then fails. Default 500. */
  commandTimeoutMs?: number | undefined;
}

/**
 * The shared governance store for several gateway instances. Counters change
 * only inside Lua scripts, so reserve/settle/release/sweep are each atomic
 * across every level of a request. Entities are JSON strings with a hash
 * index and creation-ordered sorted sets for listing.
 *
 * Creation waits for the first connection attempt but does not fail on it:
 * an unreachable Redis leaves the store unhealthy (reported by /readyz) and
 * reconnecting in the background, and every call fails at once instead of
 * queueing (a queued reserve that runs later would hold money nobody owns).
 */
export async function createRedisStore(options: RedisStoreOptions): Promise<GovernanceStore> {
  const P = `{${options.prefix ?? "sy"}}`;
  const commandTimeout = options.commandTimeoutMs ?? 500;
  // Connection errors surface as failed calls and healthy() === false.
  const redis = await connectRedis(options.url, commandTimeout);

  const k = {
    resexp: `${P}:resexp`,
    keyhash: `${P}:keyhash`,
    ver: `${P}:ver`,
    entity: (kind: string, id: string) => `${P}:e:${kind}:${id}`,
    order: (kind: string) => `${P}:z:${kind}`,
    scope: (scope: Scope) => `${P}:s:${scope}`,
  };
  const script = scripts(redis);

  /** One page in (createdAt, id) order after the token, keeping items `accept` likes. */
  async function list<T extends { id: string; createdAt: number }>(
    kind: string,
    accept: (item: T) => boolean,
    pageSize: number,
    pageToken: string | undefined,
  ): Promise<ListPage<T>> {
    const size = clampPageSize(pageSize);
    const after = decodePageToken(pageToken);
    const batch = Math.max(100, size + 1);
    const items: T[] = [];
    // Members with equal scores are ordered by id, as the cursor is; offsets step over long equal-score runs.
    for (let offset = 0; items.length <= size; offset += batch) {
      const min = after ? String(after.createdAt) : "-inf";
      const ids = await redis.zrangebyscore(k.order(kind), min, "+inf", "LIMIT", offset, batch);
      if (ids.length === 0) break;
      const jsons = await redis.mget(ids.map((id) => k.entity(kind, id)));
      for (const json of jsons) {
        if (json === null) continue; // deleted since the range was read
        const item = JSON.parse(json) as T;
        if (isAfter(item, after) && accept(item)) items.push(item);
        if (items.length > size) break;
      }
      if (ids.length < batch) break;
    }
    const out = items.slice(0, size);
    return items.length > size ? { items: out, nextPageToken: encodePageToken(out[out.length - 1]) } : { items: out };
  }

  async function get<T>(kind: string, id: string): Promise<T | undefined> {
    const json = await redis.get(k.entity(kind, id));
    return json === null ? undefined : (JSON.parse(json) as T);
  }

  /** Teams and customers: a plain write, its listing entry and a version bump in one transaction. */
  async function put(kind: string, entity: { id: string; createdAt: number }): Promise<void> {
    await exec(redis.multi().set(k.entity(kind, entity.id), JSON.stringify(entity)).zadd(k.order(kind), entity.createdAt, entity.id).incr(k.ver));
  }

  async function remove(kind: string, id: string): Promise<void> {
    await exec(redis.multi().del(k.entity(kind, id)).zrem(k.order(kind), id).incr(k.ver));
  }

  return {
    kind: "redis",

    async reserve({ id, levels, ttlMs, now, lease }: ReserveInput): Promise<ReserveResult> {
      const args: Array<string | number> = [P, id, now, ttlMs, lease?.requests ?? 1, lease?.headroom ?? 1, lease === undefined ? 0 : 1, levels.length];
      for (const l of levels) {
        args.push(l.scope, opt(l.budgetNanos), l.windowStart, l.costNanos, l.tokens, opt(l.rpm), opt(l.tpm), opt(l.maxConcurrent));
      }
      const reply = array(await script.reserve([k.resexp], args));
      if (reply[0] === -1) throw new Error(`reservation ${id} exists`);
      // Reply: status, failed level (1-based), reason, retryAfter, then rtat and ttat per level.
      const tats: Tats[] = levels.map((_, i) => ({ rtat: Number(reply[4 + 2 * i]), ttat: Number(reply[5 + 2 * i]) }));
      const rate = rateState(levels, tats, now);
      if (reply[0] === 1) return { ok: true, rate };
      const retry = reply[3] === "" ? {} : { retryAfterMs: Number(reply[3]) };
      return { ok: false, scope: levels[Number(reply[1]) - 1].scope, reason: String(reply[2]) as RefusalReason, ...retry, rate };
    },

    async settle({ id, costNanos, tokens, windows, now }: SettleInput): Promise<void> {
      const pairs = Object.entries(windows);
      await script.settle([k.resexp], [P, id, costNanos, tokens, now, pairs.length, ...pairs.flat()]);
    },

    async release(id: string): Promise<void> {
      await script.release([k.resexp], [P, id]);
    },

    async chargeLease({ lease, id, costNanos, windows, now }: LeaseChargeInput): Promise<void> {
      const pairs = Object.entries(windows);
      await script.chargeLease([k.resexp], [P, lease, id, costNanos, now, pairs.length, ...pairs.flat()]);
    },

    async returnLease(id: string, unused: { requests: number; tokens: number }, now: number): Promise<void> {
      await script.returnLease([k.resexp], [P, id, unused.requests, unused.tokens, now]);
    },

    async renew(ids: readonly string[], ttlMs: number, now: number): Promise<void> {
      if (ids.length === 0) return;
      // XX: only reservations that still exist get a new expiry.
      await redis.zadd(k.resexp, "XX", ...ids.flatMap((id) => [now + ttlMs, id]));
    },

    async sweep(now: number): Promise<number> {
      // Batches keep each script short so it does not stall other clients.
      let total = 0;
      for (;;) {
        const n = Number(await script.sweep([k.resexp], [P, now, SWEEP_BATCH]));
        total += n;
        if (n < SWEEP_BATCH) return total;
      }
    },

    async spend(scope: Scope, windowStart: number): Promise<SpendState> {
      const [spent, window, reserved, inFlight, leased] = await redis.hmget(k.scope(scope), "spent", "window", "reserved", "inflight", "leased");
      return {
        spentNanos: Number(window ?? 0) === windowStart ? Number(spent ?? 0) : 0,
        reservedNanos: Number(reserved ?? 0),
        inFlight: Number(inFlight ?? 0),
        leasedNanos: Number(leased ?? 0),
      };
    },

    async getKeyByHash(hash: string): Promise<VirtualKey | undefined> {
      const json = await script.keyByHash([k.keyhash], [hash, `${P}:e:key:`]);
      return typeof json === "string" ? (JSON.parse(json) as VirtualKey) : undefined;
    },

    getKey: (id) => get<VirtualKey>("key", id),

    listKeys: (filter, pageSize, pageToken) =>
      list<VirtualKey>(
        "key",
        (key) =>
          (filter.includeRevoked === true || key.revokedAt === undefined) &&
          (filter.teamId === undefined || key.teamId === filter.teamId),
        pageSize,
        pageToken,
      ),

    async putKey(key: VirtualKey): Promise<void> {
      const keys = [k.entity("key", key.id), k.keyhash, k.order("key"), k.ver];
      const ok = await script.putKey(keys, [key.id, key.hash, JSON.stringify(key), key.createdAt]);
      if (ok !== 1) throw new Error("duplicate key hash");
    },

    getTeam: (id) => get<Team>("team", id),
    listTeams: (filter, pageSize, pageToken) =>
      list<Team>("team", (t) => filter.customerId === undefined || t.customerId === filter.customerId, pageSize, pageToken),
    putTeam: (team) => put("team", team),
    deleteTeam: (id) => remove("team", id),

    getCustomer: (id) => get<Customer>("customer", id),
    listCustomers: (pageSize, pageToken) => list<Customer>("customer", () => true, pageSize, pageToken),
    putCustomer: (customer) => put("customer", customer),
    deleteCustomer: (id) => remove("customer", id),

    // Keys are never deleted (revoking keeps them), so the listing set counts every key ever put.
    keyCount: () => redis.zcard(k.order("key")),

    async version(): Promise<number> {
      return Number((await redis.get(k.ver)) ?? 0);
    },

    healthy: () => redis.status === "ready",

    async close(): Promise<void> {
      if (redis.status === "ready") await redis.quit().catch(() => undefined);
      redis.disconnect();
    },
  };
}

const SWEEP_BATCH = 1000;

/** Absent limits travel to Lua as "". */
const opt = (v: number | undefined): string | number => (v === undefined ? "" : v);

function array(reply: unknown): unknown[] {
  if (!Array.isArray(reply)) throw new Error("unexpected reply from governance script");
  return reply;
}

async function exec(multi: { exec(): Promise<Array<[Error | null, unknown]> | null> }): Promise<void> {
  const results = await multi.exec();
  if (results === null) throw new Error("redis transaction aborted");
  for (const [err] of results) if (err) throw err;
}

type Script = (keys: string[], args: Array<string | number>) => Promise<unknown>;

/** EVALSHA with the script cached server-side; EVAL once when Redis does not know it (restart, failover). */
function defineScript(redis: Redis, lua: string): Script {
  const sha = createHash("sha1").update(lua).digest("hex");
  return async (keys, args) => {
    try {
      return await redis.evalsha(sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith("NOSCRIPT")) throw err;
      return await redis.eval(lua, keys.length, ...keys, ...args);
    }
  };
}

function scripts(redis: Redis) {
  return {
    reserve: defineScript(redis, COMMON + RESERVE),
    settle: defineScript(redis, COMMON + SETTLE),
    release: defineScript(redis, COMMON + RELEASE),
    chargeLease: defineScript(redis, COMMON + CHARGE_LEASE),
    returnLease: defineScript(redis, COMMON + RETURN_LEASE),
    sweep: defineScript(redis, COMMON + SWEEP),
    putKey: defineScript(redis, PUT_KEY),
    keyByHash: defineScript(redis, KEY_BY_HASH),
  };
}

/*
 * Counter scripts. KEYS[1] is the reservation expiry set (so a cluster client
 * routes by it); ARGV[1] is the "{prefix}" every other key is built from.
 * Building keys inside a script is safe here because all share one hash tag,
 * hence one slot. Lua numbers are doubles, the same as JavaScript's, so both
 * stores compute identical values; they are stored with %.17g (tostring keeps
 * only 14 digits) and returned as strings (Redis truncates returned numbers).
 */
const COMMON = `
local P = ARGV[1]
local function num(v) return tonumber(v) or 0 end
local function opt(v) if v == nil or v == false or v == '' then return nil end return tonumber(v) end
local function fmt(x) return string.format('%.17g', x) end

local function readScope(scope)
  local v = redis.call('HMGET', P .. ':s:' .. scope, 'spent', 'window', 'reserved', 'inflight', 'rtat', 'ttat', 'leased', 'lslots')
  return { spent = num(v[1]), window = num(v[2]), reserved = num(v[3]), inflight = num(v[4]), rtat = num(v[5]), ttat = num(v[6]),
    leased = num(v[7]), lslots = num(v[8]) }
end

local function writeScope(scope, s)
  redis.call('HSET', P .. ':s:' .. scope, 'spent', fmt(s.spent), 'window', fmt(s.window), 'reserved', fmt(s.reserved),
    'inflight', fmt(s.inflight), 'rtat', fmt(s.rtat), 'ttat', fmt(s.ttat), 'leased', fmt(s.leased), 'lslots', fmt(s.lslots))
end

-- A reservation is a hash: L 1 for a lease, q requests, n levels; per level i: s<i> scope, c<i> cost,
-- k<i> tokens, r<i> rpm and t<i> tpm ('' when none).
local function readHeld(id)
  local h = redis.call('HGETALL', P .. ':res:' .. id)
  if #h == 0 then return nil end
  local f = {}
  for i = 1, #h, 2 do f[h[i]] = h[i + 1] end
  local levels = {}
  for i = 1, num(f.n) do
    levels[i] = { scope = f['s' .. i], cost = num(f['c' .. i]), tokens = num(f['k' .. i]), rpm = opt(f['r' .. i]), tpm = opt(f['t' .. i]) }
  end
  return levels, f.L == '1', math.max(1, num(f.q))
end

local function dropHeld(id)
  redis.call('DEL', P .. ':res:' .. id)
  redis.call('ZREM', KEYS[1], id)
end

-- Gives back a reservation's (or a lease's) money and in-flight slots; tokens stay consumed.
local function unapply(levels, lease, q)
  for _, l in ipairs(levels) do
    local s = readScope(l.scope)
    if lease then
      s.leased = math.max(0, s.leased - l.cost)
      s.lslots = math.max(0, s.lslots - q)
    else
      s.reserved = math.max(0, s.reserved - l.cost)
      s.inflight = math.max(0, s.inflight - 1)
    end
    writeScope(l.scope, s)
  end
end

local function releaseExpired(now, limit)
  local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. fmt(now), 'LIMIT', 0, limit)
  for _, id in ipairs(ids) do
    local levels, lease, q = readHeld(id)
    if levels then unapply(levels, lease, q) end
    dropHeld(id)
  end
  return #ids
end

-- Charges cost to a scope's spend in the given window; windows only roll forward, so a charge for an
-- older window goes into the current one.
local function charge(s, w, cost)
  if w ~= nil and w > s.window then
    s.spent = 0
    s.window = w
  end
  s.spent = s.spent + cost
end

-- The scope and window pairs from ARGV[7] on, ARGV[6] of them: each level's current window.
local function readWindows()
  local windows, order = {}, {}
  for i = 1, tonumber(ARGV[6]) do
    order[i] = ARGV[5 + 2 * i]
    windows[order[i]] = tonumber(ARGV[6 + 2 * i])
  end
  return windows, order
end

-- A request no reservation or lease holds any more (expired) still has its spend charged.
local function chargeUnheld(windows, order, cost)
  for _, scope in ipairs(order) do
    local s = readScope(scope)
    charge(s, windows[scope], cost)
    writeScope(scope, s)
  end
end
`;

/**
 * ARGV: P, id, now, ttlMs, requests, headroom, lease (1 or 0), n, then per level: scope, budget,
 * windowStart, cost, tokens, rpm, tpm, maxConcurrent. Checks as if headroom times the ask were made.
 */
const RESERVE = `
local id, now, ttl = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local q, room, lease, n = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7] == '1', tonumber(ARGV[8])
releaseExpired(now, 100)
if redis.call('EXISTS', P .. ':res:' .. id) == 1 then return { -1 } end

local levels, states = {}, {}
for i = 1, n do
  local b = 8 + (i - 1) * 8
  levels[i] = { scope = ARGV[b + 1], budget = opt(ARGV[b + 2]), window = tonumber(ARGV[b + 3]), cost = tonumber(ARGV[b + 4]),
    tokens = tonumber(ARGV[b + 5]), rpm = opt(ARGV[b + 6]), tpm = opt(ARGV[b + 7]), maxc = opt(ARGV[b + 8]) }
  states[i] = readScope(levels[i].scope)
end

local function reply(status, failed, reason, retry)
  local out = { status, failed, reason, retry }
  for i = 1, n do
    out[#out + 1] = fmt(states[i].rtat)
    out[#out + 1] = fmt(states[i].ttat)
  end
  return out
end

-- Check every level before charging any.
for i, l in ipairs(levels) do
  local s = states[i]
  local spent = 0
  if s.window >= l.window then spent = s.spent end
  if l.budget and spent + s.reserved + s.leased + room * l.cost > l.budget then return reply(0, i, 'budget', '') end
  if l.maxc and s.inflight + s.lslots + room * q > l.maxc then return reply(0, i, 'concurrency', '') end
  if l.rpm then
    l.rtat = math.max(s.rtat, now) + q * (60000 / l.rpm)
    local needed = math.max(s.rtat, now) + room * q * (60000 / l.rpm)
    if needed - now > 60000 then return reply(0, i, 'rpm', fmt(math.ceil(needed - now - 60000))) end
  end
  if l.tpm then
    l.ttat = math.max(s.ttat, now) + l.tokens * (60000 / l.tpm)
    local needed = math.max(s.ttat, now) + room * l.tokens * (60000 / l.tpm)
    if needed - now > 60000 then
      -- More tokens than a whole minute allows: waiting never helps.
      if l.tokens > l.tpm then return reply(0, i, 'tpm', '') end
      return reply(0, i, 'tpm', fmt(math.ceil(needed - now - 60000)))
    end
  end
end

local held = { 'n', n, 'q', q, 'L', lease and '1' or '0' }
for i, l in ipairs(levels) do
  local s = states[i]
  if l.window > s.window then
    s.spent = 0
    s.window = l.window
  end
  if lease then
    s.leased = s.leased + l.cost
    s.lslots = s.lslots + q
  else
    s.reserved = s.reserved + l.cost
    s.inflight = s.inflight + 1
  end
  if l.rpm then s.rtat = l.rtat end
  if l.tpm then s.ttat = l.ttat end
  writeScope(l.scope, s)
  local rpm, tpm = '', ''
  if l.rpm then rpm = fmt(l.rpm) end
  if l.tpm then tpm = fmt(l.tpm) end
  for _, v in ipairs({ 's' .. i, l.scope, 'c' .. i, fmt(l.cost), 'k' .. i, fmt(l.tokens), 'r' .. i, rpm, 't' .. i, tpm }) do held[#held + 1] = v end
end
redis.call('HSET', P .. ':res:' .. id, unpack(held))
redis.call('ZADD', KEYS[1], fmt(now + ttl), id)
return reply(1, 0, '', '')
`;

/** ARGV: P, id, cost, tokens, now, n, then n pairs of scope, windowStart. Returns 0 when already settled. */
const SETTLE = `
local id, cost, tokens, now = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local mark = P .. ':settled:' .. id
if redis.call('EXISTS', mark) == 1 then return 0 end
local windows, order = readWindows()

local levels = readHeld(id)
if levels then
  for _, l in ipairs(levels) do
    local s = readScope(l.scope)
    s.reserved = math.max(0, s.reserved - l.cost)
    s.inflight = math.max(0, s.inflight - 1)
    charge(s, windows[l.scope], cost)
    -- Refund the tokens reserved but not used (or charge the excess), never into the past.
    if l.tpm then s.ttat = math.max(now, s.ttat - (l.tokens - tokens) * (60000 / l.tpm)) end
    writeScope(l.scope, s)
  end
  dropHeld(id)
else
  -- Expired or never reserved: spend is still never lost.
  chargeUnheld(windows, order, cost)
end
redis.call('SET', mark, '1', 'PX', 600000)
return 1
`;

/** ARGV: P, id. */
const RELEASE = `
local levels, lease, q = readHeld(ARGV[2])
if not levels then return 0 end
unapply(levels, lease, q)
dropHeld(ARGV[2])
return 1
`;

/** ARGV: P, lease id, request id, cost, now, n, then n pairs of scope, windowStart. Returns 0 when already charged. */
const CHARGE_LEASE = `
local lease, id, cost = ARGV[2], ARGV[3], tonumber(ARGV[4])
local mark = P .. ':settled:' .. id
if redis.call('EXISTS', mark) == 1 then return 0 end
local windows, order = readWindows()
local levels, isLease = readHeld(lease)
if levels and isLease then
  -- One request a time, on every level: only the three fields it changes are read and written.
  local held = {}
  for i, l in ipairs(levels) do
    -- The cost leaves the lease (what it holds is never negative) and becomes spend.
    local taken = math.min(cost, l.cost)
    held[#held + 1] = 'c' .. i
    held[#held + 1] = fmt(l.cost - taken)
    local key = P .. ':s:' .. l.scope
    local v = redis.call('HMGET', key, 'spent', 'window', 'leased')
    local s = { spent = num(v[1]), window = num(v[2]) }
    charge(s, windows[l.scope], cost)
    redis.call('HSET', key, 'spent', fmt(s.spent), 'window', fmt(s.window), 'leased', fmt(math.max(0, num(v[3]) - taken)))
  end
  redis.call('HSET', P .. ':res:' .. lease, unpack(held))
else
  -- The lease expired (its instance stalled): the spend is still never lost.
  chargeUnheld(windows, order, cost)
end
redis.call('SET', mark, '1', 'PX', 600000)
return 1
`;

/** ARGV: P, lease id, unused requests, unused tokens, now. */
const RETURN_LEASE = `
local id, requests, tokens, now = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local levels, lease, q = readHeld(id)
if not levels or not lease then return 0 end
unapply(levels, lease, q)
-- What the lease did not hand out goes back to the rate limits, never into the past.
for _, l in ipairs(levels) do
  if l.rpm or l.tpm then
    local s = readScope(l.scope)
    if l.rpm then s.rtat = math.max(now, s.rtat - requests * (60000 / l.rpm)) end
    if l.tpm then s.ttat = math.max(now, s.ttat - tokens * (60000 / l.tpm)) end
    writeScope(l.scope, s)
  end
end
dropHeld(id)
return 1
`;

/** ARGV: P, now, limit. Returns how many were released. */
const SWEEP = `
return releaseExpired(tonumber(ARGV[2]), tonumber(ARGV[3]))
`;

/**
 * KEYS: entity, hash index, listing set, version. ARGV: id, hash, json, createdAt.
 * Returns 0 when another key owns the hash (lookups by hash must stay unambiguous).
 */
const PUT_KEY = `
local owner = redis.call('HGET', KEYS[2], ARGV[2])
if owner and owner ~= ARGV[1] then return 0 end
local old = redis.call('GET', KEYS[1])
if old then
  local oldHash = cjson.decode(old).hash
  if oldHash ~= ARGV[2] and redis.call('HGET', KEYS[2], oldHash) == ARGV[1] then redis.call('HDEL', KEYS[2], oldHash) end
end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
redis.call('INCR', KEYS[4])
return 1
`;

/** KEYS: hash index. ARGV: hash, key entity prefix. One round trip for the authentication path. */
const KEY_BY_HASH = `
local id = redis.call('HGET', KEYS[1], ARGV[1])
if not id then return false end
return redis.call('GET', ARGV[2] .. id)
`;
