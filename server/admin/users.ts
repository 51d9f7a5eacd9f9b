/**
 * People and admin API keys, and who may grant what. Transport-free; the RPC
 * service (server/rpc/users.ts) only maps messages. The permission table has
 * already checked the caller holds users.* (or is any admin, for API keys);
 * this file checks every field that could escalate:
 * - a grant is given only by someone holding an equal or higher role over a
 *   scope that contains it; the owner role only by owners, and only globally;
 * - nobody changes their own grants;
 * - a user holding anything the caller could not grant (an owner, for an
 *   admin) cannot be changed, disabled or deleted by that caller;
 * - the last enabled owner stays.
 */
import { GatewayError, invalid } from "../errors/errors.ts";
import { hashSecret } from "../governance/keys.ts";
import type { Resolver } from "./access.ts";
import { isApiKey, newApiKeySecret, type AdminAuth } from "./auth.ts";
import { hashPassword, passwordProblem } from "./passwords.ts";
import { newAdminId, normalEmail, type AdminStore, type ApiKeyRecord, type User } from "./store.ts";
import { allows, roleRank, ROLES, scopeContains, type AdminIdentity, type Grant, type Role, type Scope } from "./types.ts";

export type UserInfo = Omit<User, "passwordHash"> & { hasPassword: boolean };
export type ApiKeyInfo = Omit<ApiKeyRecord, "hash">;

export interface Users {
  create(caller: AdminIdentity, input: { email: string; name: string; password?: string | undefined; grants: Grant[] }): Promise<UserInfo>;
  get(id: string): Promise<UserInfo>;
  list(pageSize: number, pageToken: string | undefined): Promise<{ items: UserInfo[]; nextPageToken?: string | undefined }>;
  update(caller: AdminIdentity, id: string, changes: { name?: string | undefined; disabled?: boolean | undefined; password?: string | undefined }): Promise<UserInfo>;
  delete(caller: AdminIdentity, id: string): Promise<void>;
  setGrants(caller: AdminIdentity, id: string, grants: Grant[]): Promise<UserInfo>;
  createApiKey(caller: AdminIdentity, input: { name: string; grants: Grant[]; expiresAt?: number | undefined }): Promise<{ key: ApiKeyInfo; secret: string }>;
  listApiKeys(caller: AdminIdentity, includeRevoked: boolean): Promise<ApiKeyInfo[]>;
  revokeApiKey(caller: AdminIdentity, id: string): Promise<ApiKeyInfo>;
}

export function userInfo(u: User): UserInfo {
  const { passwordHash, ...rest } = u;
  return { ...rest, hasPassword: passwordHash !== undefined };
}

function keyInfo(k: ApiKeyRecord): ApiKeyInfo {
  const { hash: _hash, ...rest } = k;
  return rest;
}

export function createUsers(store: AdminStore, auth: AdminAuth, resolver: Resolver): Users {
  const customerOf = new Map<string, string | undefined>();

  // Teams move between customers: what this map holds is only trusted within one call (cleared by each).
  /** Checks a grant's shape and that its customer or team exists. */
  async function checkGrant(g: Grant, param: string): Promise<void> {
    if (!ROLES.includes(g.role)) throw invalid(`${param}.role: one of ${ROLES.join(", ")}`, `${param}.role`);
    if (g.role === "owner" && g.scope.kind !== "global") throw invalid(`${param}: the owner role is global only`, param);
    if (g.scope.kind === "team") customerOf.set(g.scope.id, (await resolver.team(g.scope.id)).customerId);
    if (g.scope.kind === "customer") await resolver.customer(g.scope.id);
  }

  async function teamsOf(grants: readonly Grant[]): Promise<void> {
    for (const g of grants) {
      if (g.scope.kind === "team" && !customerOf.has(g.scope.id)) {
        try {
          customerOf.set(g.scope.id, (await resolver.team(g.scope.id)).customerId);
        } catch {
          customerOf.set(g.scope.id, undefined);
        }
      }
    }
  }

  /** The caller holds a role at least as high over a scope containing the grant's. */
  async function canGrant(caller: AdminIdentity, g: Grant): Promise<boolean> {
    await teamsOf([g, ...caller.grants]);
    const contains = (a: Scope, b: Scope): boolean => scopeContains(a, b, (t) => customerOf.get(t));
    return caller.grants.some((mine) => roleRank(mine.role) >= roleRank(g.role) && contains(mine.scope, g.scope));
  }

  async function mustGrantAll(caller: AdminIdentity, grants: readonly Grant[], what: string): Promise<void> {
    for (const g of grants) {
      if (!(await canGrant(caller, g))) throw new GatewayError("permission_denied", `${what}: you cannot grant ${describe(g)}: it is more than you hold`);
    }
  }

  async function mustUser(id: string): Promise<User> {
    const u = await store.getUser(id);
    if (u === undefined) throw new GatewayError("not_found", `no user ${id}`);
    return u;
  }

  /** The caller may manage the user only if it could grant everything the user holds. */
  async function mustOutrank(caller: AdminIdentity, u: User, what: string): Promise<void> {
    for (const g of u.grants) {
      if (!(await canGrant(caller, g))) throw new GatewayError("permission_denied", `${what}: ${u.email} holds ${describe(g)}, more than you do`);
    }
  }

  const isOwner = (u: User): boolean => !u.disabled && u.grants.some((g) => g.role === "owner");

  async function keepAnOwner(u: User, after: User | undefined): Promise<void> {
    if (!isOwner(u) || (after !== undefined && isOwner(after))) return;
    const others = (await allUsers()).filter((x) => x.id !== u.id && isOwner(x));
    if (others.length === 0) throw invalid(`${u.email} is the last owner: make someone else an owner first`);
  }

  async function allUsers(): Promise<User[]> {
    const out: User[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await store.listUsers(500, after);
      out.push(...page);
      if (page.length < 500) return out;
      after = page[page.length - 1]!.id;
    }
  }

  function checkEmail(email: string): string {
    const e = normalEmail(email);
    if (e === undefined) throw invalid("email: not an email address", "email");
    return e;
  }

  function checkName(name: string, param = "name"): string {
    if (name.length > 200) throw invalid(`${param}: at most 200 characters`, param);
    return name;
  }

  return {
    async create(caller, input) {
      customerOf.clear();
      const email = checkEmail(input.email);
      for (const [i, g] of input.grants.entries()) await checkGrant(g, `grants[${i}]`);
      await mustGrantAll(caller, input.grants, "create_user");
      if ((await store.userByEmail(email)) !== undefined) throw invalid(`a user with email ${email} exists`, "email");
      if (input.password !== undefined) {
        const p = passwordProblem(input.password);
        if (p) throw invalid(p, "password");
      }
      const now = Date.now();
      const user: User = {
        id: newAdminId("usr"),
        email,
        name: checkName(input.name),
        passwordHash: input.password === undefined ? undefined : await hashPassword(input.password),
        grants: input.grants,
        disabled: false,
        createdAt: now,
        updatedAt: now,
      };
      await store.createUser(user).catch((err: unknown) => {
        // Made at the same moment elsewhere (another instance): the unique email decides.
        if (isUniqueViolation(err)) throw invalid(`a user with email ${email} exists`, "email");
        throw err;
      });
      await auth.refresh();
      return userInfo(user);
    },
    get: async (id) => userInfo(await mustUser(id)),
    async list(pageSize, pageToken) {
      if (pageSize > 1000) throw invalid("page_size: at most 1000", "page_size");
      const size = pageSize || 100;
      const page = await store.listUsers(size + 1, pageToken || undefined);
      const more = page.length > size;
      const items = page.slice(0, size).map(userInfo);
      return { items, nextPageToken: more ? items[items.length - 1]!.id : undefined };
    },
    async update(caller, id, changes) {
      // The last-owner rule reads, then writes: no other instance may change people in between.
      return store.exclusive(async () => {
        customerOf.clear();
        const u = await mustUser(id);
        if (!isSelf(caller, id)) await mustOutrank(caller, u, "update_user");
        if (isSelf(caller, id) && changes.disabled === true) throw invalid("you cannot disable yourself");
        const next: User = { ...u, updatedAt: Date.now() };
        if (changes.name !== undefined) next.name = checkName(changes.name);
        if (changes.disabled !== undefined) next.disabled = changes.disabled;
        if (changes.password !== undefined) {
          const p = passwordProblem(changes.password);
          if (p) throw invalid(p, "password");
          next.passwordHash = await hashPassword(changes.password);
        }
        await keepAnOwner(u, next);
        await store.updateUser(next);
        // A disabled user or a changed password ends sessions (the caller's own current one survives).
        if (next.disabled || changes.password !== undefined) await store.deleteSessionsOf(id, isSelf(caller, id) ? caller.sessionId : undefined);
        return userInfo(next);
      });
    },
    async delete(caller, id) {
      // The last-owner rule reads, then writes: no other instance may change people in between.
      return store.exclusive(async () => {
        customerOf.clear();
        const u = await mustUser(id);
        if (isSelf(caller, id)) throw invalid("you cannot delete yourself");
        await mustOutrank(caller, u, "delete_user");
        await keepAnOwner(u, undefined);
        await store.deleteUser(id);
        await store.deleteSessionsOf(id);
        await auth.refresh();
      });
    },
    async setGrants(caller, id, grants) {
      // The last-owner rule reads, then writes: no other instance may change people in between.
      return store.exclusive(async () => {
        customerOf.clear();
        const u = await mustUser(id);
        if (isSelf(caller, id)) throw new GatewayError("permission_denied", "set_grants: you cannot change your own grants");
        for (const [i, g] of grants.entries()) await checkGrant(g, `grants[${i}]`);
        await mustOutrank(caller, u, "set_grants");
        await mustGrantAll(caller, grants, "set_grants");
        const next = { ...u, grants, updatedAt: Date.now() };
        await keepAnOwner(u, next);
        await store.updateUser(next);
        return userInfo(next);
      });
    },
    async createApiKey(caller, input) {
      customerOf.clear();
      if (input.name.trim() === "") throw invalid("name: required", "name");
      if (input.grants.length === 0) throw invalid("grants: at least one", "grants");
      for (const [i, g] of input.grants.entries()) await checkGrant(g, `grants[${i}]`);
      await mustGrantAll(caller, input.grants, "create_api_key");
      if (input.expiresAt !== undefined && input.expiresAt <= Date.now()) throw invalid("expires_at: must be in the future", "expires_at");
      const secret = newApiKeySecret();
      if (!isApiKey(secret)) throw new Error("admin API key shape");
      const key: ApiKeyRecord = {
        id: newAdminId("adk"),
        hash: hashSecret(secret),
        hint: `${secret.slice(0, 10)}…${secret.slice(-4)}`,
        name: checkName(input.name),
        grants: input.grants,
        createdBy: caller.id,
        createdAt: Date.now(),
        expiresAt: input.expiresAt,
      };
      await store.createApiKey(key);
      await auth.refresh();
      return { key: keyInfo(key), secret };
    },
    async listApiKeys(caller, includeRevoked) {
      const all = await store.listApiKeys(includeRevoked);
      const everyone = allows(caller, "users.read", {});
      return all.filter((k) => everyone || k.createdBy === caller.id).map(keyInfo);
    },
    async revokeApiKey(caller, id) {
      customerOf.clear();
      const k = await store.getApiKey(id);
      if (k === undefined) throw new GatewayError("not_found", `no admin API key ${id}`);
      if (k.createdBy !== caller.id) {
        if (!allows(caller, "users.write", {})) throw new GatewayError("permission_denied", "revoke_api_key: only its creator or a global admin may revoke it");
        await mustGrantAll(caller, k.grants, "revoke_api_key");
      }
      if (k.revokedAt !== undefined) return keyInfo(k);
      const next = { ...k, revokedAt: Date.now() };
      await store.updateApiKey(next);
      await auth.refresh();
      return keyInfo(next);
    },
  };
}

/** A unique constraint refused an insert (PostgreSQL 23505, or SQLite's message). */
function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === "23505" || (err instanceof Error && err.message.includes("UNIQUE constraint failed"));
}

/** The caller is the user, directly or through an admin API key the user made. */
function isSelf(caller: AdminIdentity, userId: string): boolean {
  return caller.id === userId || caller.onBehalfOf === userId;
}

function describe(g: Grant): string {
  const where = g.scope.kind === "global" ? "globally" : `on ${g.scope.kind} ${g.scope.id}`;
  return `${g.role} ${where}`;
}

export type { Role };
