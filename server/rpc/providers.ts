import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import {
  ProviderService,
  RouteSticky,
  RouteStrategy,
  Source,
  type AliasSchema,
  type ProviderSchema,
  type RouteSchema,
  type RouteTarget,
} from "../../gen/switchyard/v1/providers_pb.ts";
import type { AliasView, ProviderAdmin, ProviderView, RouteView } from "../admin/providers.ts";
import { invalid } from "../errors/errors.ts";
import type { Route } from "../routing/plan.ts";
import { asAdmin, type ServiceOptions } from "./admin.ts";

/**
 * switchyard.v1.ProviderService over the provider admin
 * (server/admin/providers.ts). Authorization and audit come from the
 * permission table's interceptor in `options`; this file only maps messages.
 */
export function registerProviderService(router: ConnectRouter, providers: ProviderAdmin, options: ServiceOptions): void {
  router.service(ProviderService, {
    listProviders: (_req, ctx) => asAdmin(ctx, async () => ({ providers: providers.list().map(providerOut) })),
    createProvider: (req, ctx) =>
      asAdmin(ctx, async () => ({
        provider: providerOut(await providers.create({ id: req.id, type: req.type, baseUrl: req.baseUrl, apiKeys: req.apiKeys, models: req.models, headers: req.headers })),
      })),
    updateProvider: (req, ctx) =>
      asAdmin(ctx, async () => ({
        provider: providerOut(await providers.update(req.id, {
          baseUrl: req.baseUrl,
          apiKeys: listChange(req.apiKeys, req.clearApiKeys, "api_keys"),
          models: listChange(req.models, req.clearModels, "models"),
          headers: req.clearHeaders ? {} : Object.keys(req.headers).length > 0 ? req.headers : undefined,
        })),
      })),
    deleteProvider: (req, ctx) => asAdmin(ctx, async () => ({ provider: providerOut(await providers.delete(req.id)) })),
    listRoutes: (_req, ctx) =>
      asAdmin(ctx, async () => {
        const { aliases, routes } = providers.listRoutes();
        return { aliases: aliases.map(aliasOut), routes: routes.map(routeOut) };
      }),
    setAlias: (req, ctx) => asAdmin(ctx, async () => ({ alias: aliasOut(await providers.setAlias(req.name, req.target)) })),
    deleteAlias: (req, ctx) => asAdmin(ctx, async () => ({ alias: aliasOut(await providers.deleteAlias(req.name)) })),
    setRoute: (req, ctx) =>
      asAdmin(ctx, async () => ({
        route: routeOut(await providers.setRoute(req.name, routeIn(req.targets, req.strategy, req.sticky, req.fallbacks))),
      })),
    deleteRoute: (req, ctx) => asAdmin(ctx, async () => ({ route: routeOut(await providers.deleteRoute(req.name)) })),
  }, options);
}

/** A list given replaces the old one; clear_* empties it; neither leaves it. */
function listChange(list: string[], clear: boolean, field: string): string[] | undefined {
  if (clear && list.length > 0) throw invalid(`${field}: give a list or clear_${field}, not both`, field);
  return clear ? [] : list.length > 0 ? list : undefined;
}

const SOURCE = { config: Source.CONFIG, admin: Source.ADMIN } as const;
const STRATEGY: Record<Route["strategy"], RouteStrategy> = { weighted: RouteStrategy.WEIGHTED, "least-busy": RouteStrategy.LEAST_BUSY };
const STICKY: Record<Route["sticky"], RouteSticky> = { none: RouteSticky.NONE, user: RouteSticky.USER, session: RouteSticky.SESSION };

function routeIn(targets: RouteTarget[], strategy: RouteStrategy, sticky: RouteSticky, fallbacks: string[]): Route {
  return {
    targets: targets.map((t, i) => {
      if (t.model === "") throw invalid(`targets[${i}].model: required`, `targets[${i}].model`);
      if (!(t.weight >= 0) || !Number.isFinite(t.weight)) throw invalid(`targets[${i}].weight: must be positive`, `targets[${i}].weight`);
      return { model: t.model, weight: t.weight === 0 ? 1 : t.weight };
    }),
    strategy: strategy === RouteStrategy.LEAST_BUSY ? "least-busy" : strategy === RouteStrategy.WEIGHTED || strategy === RouteStrategy.UNSPECIFIED ? "weighted" : badEnum("strategy"),
    sticky: sticky === RouteSticky.USER ? "user" : sticky === RouteSticky.SESSION ? "session" : sticky === RouteSticky.NONE || sticky === RouteSticky.UNSPECIFIED ? "none" : badEnum("sticky"),
    fallbacks: fallbacks.map((f, i) => {
      if (f === "") throw invalid(`fallbacks[${i}]: empty`, `fallbacks[${i}]`);
      return f;
    }),
  };
}

function badEnum(field: string): never {
  throw invalid(`${field}: unknown value`, field);
}

function providerOut(p: ProviderView): MessageInitShape<typeof ProviderSchema> {
  return {
    id: p.id,
    type: p.type,
    baseUrl: p.baseUrl,
    models: p.models,
    keyCount: p.keyCount,
    keyHints: p.keyHints,
    headerNames: p.headerNames,
    source: SOURCE[p.source],
    createdAt: p.createdAt === undefined ? undefined : timestampFromMs(p.createdAt),
    updatedAt: p.updatedAt === undefined ? undefined : timestampFromMs(p.updatedAt),
  };
}

function aliasOut(a: AliasView): MessageInitShape<typeof AliasSchema> {
  return { name: a.name, target: a.target, source: SOURCE[a.source] };
}

function routeOut(r: RouteView): MessageInitShape<typeof RouteSchema> {
  return {
    name: r.name,
    targets: r.route.targets.map((t) => ({ model: t.model, weight: t.weight })),
    strategy: STRATEGY[r.route.strategy],
    sticky: STICKY[r.route.sticky],
    fallbacks: r.route.fallbacks,
    source: SOURCE[r.source],
  };
}
