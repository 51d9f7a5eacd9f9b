import type { Attributes } from "@opentelemetry/api";
import { GatewayError } from "../errors/errors.ts";
import type { CallOptions } from "../providers/types.ts";
import type { CallToken, HealthRegistry } from "../routing/health.ts";
import { backoffMs, isFallbackable, isRetryable } from "../routing/policy.ts";
import type { Target } from "../routing/resolve.ts";
import type { AttemptTrace, RequestTrace } from "../telemetry/tracing.ts";

/** Retry and deadline settings (configuration `routing`). */
export interface RetryPolicy {
  /** Extra tries on the same target after a retryable failure. */
  retries: number;
  backoffMs: number;
  maxBackoffMs: number;
  /** No new attempt starts after this long. */
  deadlineMs: number;
}

/** What one attempt needs and reports; the pipeline's per-request state implements it. */
export interface AttemptState {
  signal: AbortSignal;
  requestId: string;
  trace: RequestTrace;
  /** The span of the attempt in progress (ended by the pipeline when the request ends). */
  attempt: AttemptTrace | undefined;
  target: Target | undefined;
  key: number | undefined;
  attempts: number;
  tried: string[];
  upstreamStart: number;
  timeouts: CallOptions["timeouts"];
  /** performance.now() when the request arrived: the routing deadline counts from here. */
  startedAt: number;
  /** The successful attempt's breaker token (streams settle at the first chunk, end later). */
  token: CallToken | undefined;
}

export interface InvokeDeps {
  health: HealthRegistry;
  retry: RetryPolicy;
  tracingEnabled: boolean;
}

/**
 * Runs `send` against the request's targets in order until one succeeds:
 * open circuits and keys are skipped (never waited on), retryable failures
 * are retried on the same target with backoff (honouring Retry-After) while
 * the deadline allows, and failures another target could fix fall through
 * to the next one. The caller's own mistakes and a caller who went away end
 * it at once. With `holdHealth`, the successful attempt stays in flight for
 * health until the pipeline ends it (streams).
 */
export async function invoke<T>(
  deps: InvokeDeps,
  state: AttemptState,
  /** The request's targets in order (routing's plan, less what governance does not allow). */
  targets: readonly Target[],
  /** The model the caller asked for, for messages. */
  model: string,
  attributes: Attributes | undefined,
  send: (target: Target, call: CallOptions) => Promise<T>,
  holdHealth = false,
): Promise<T> {
  const { health, retry } = deps;
  // The caller's own total timeout bounds the whole exchange, retries and fallbacks included.
  const deadline = state.startedAt + Math.min(retry.deadlineMs, state.timeouts?.totalMs ?? Infinity);
  let last: GatewayError | undefined;
  const keysOut = new Set<string>();

  for (const target of targets) {
    if (!health.targetAllows(target)) continue;
    for (let n = 0; n <= retry.retries; n++) {
      // A failure may have opened the target (or made the next call its half-open probe's rival).
      if (n > 0 && !health.targetAllows(target)) break;
      const key = health.pickKey(target.provider);
      if (key === null) {
        keysOut.add(target.provider.id); // every key's circuit is open: the next target
        break;
      }
      state.target = target;
      state.key = key;
      state.attempts++;
      state.tried.push(`${target.provider.id}/${target.model}`);
      state.attempt = state.trace.startAttempt(target.provider.id, target.model, deps.tracingEnabled ? attributes : undefined);
      state.upstreamStart = performance.now();
      const token = health.begin(target, key);
      try {
        const result = await send(target, callOptions(state, key));
        health.settle(target, key, undefined, token);
        if (!holdHealth) health.done(target, key);
        state.token = token;
        return result;
      } catch (e) {
        const err = GatewayError.from(e);
        // A caller who left is nobody's failure; nothing more is tried.
        health.end(target, key, state.signal.aborted ? CANCELED : err, token);
        if (state.signal.aborted || !isFallbackable(err)) throw err;
        state.attempt.end({ errorCode: err.code, errorMessage: err.message });
        state.attempt = undefined;
        last = err;
        if (!isRetryable(err) || n === retry.retries) break;
        // A rate-limited key cools down; when another key is free, the retry need not wait.
        const wait = err.code === "rate_limited" && health.hasFreeKey(target.provider) ? 0 : backoffMs(n, retry.backoffMs, retry.maxBackoffMs, err.retryAfter);
        if (performance.now() + wait > deadline) break; // cannot wait that long here: the next target
        await sleep(wait, state.signal);
      }
    }
    if (performance.now() > deadline) break;
  }

  if (last !== undefined) {
    throw new GatewayError(last.code, `${last.message} (after ${state.attempts} attempt${state.attempts === 1 ? "" : "s"}: ${state.tried.join(", ")})`, {
      ...(last.param === undefined ? {} : { param: last.param }),
      ...(last.providerCode === undefined ? {} : { providerCode: last.providerCode }),
      ...(last.upstreamStatus === undefined ? {} : { upstreamStatus: last.upstreamStatus }),
      ...(last.retryAfter === undefined ? {} : { retryAfter: last.retryAfter }),
      cause: last,
    });
  }
  const wait = Math.ceil(health.retryInMs(targets) / 1000);
  const why = keysOut.size > 0 ? `every key of ${[...keysOut].join(", ")} has an open circuit` : "their circuits are open or probing";
  throw new GatewayError("upstream_unavailable", `no target for '${model}' is available now (${targets.map((t) => `${t.provider.id}/${t.model}`).join(", ")}: ${why})`, {
    ...(wait > 0 ? { retryAfter: String(wait) } : {}),
  });
}

const CANCELED = new GatewayError("canceled", "the caller canceled the request");

function callOptions(state: AttemptState, key: number | undefined): CallOptions {
  const headers = state.attempt?.headers;
  return {
    signal: state.signal,
    requestId: state.requestId,
    headers,
    keyIndex: key,
    timeouts: state.timeouts,
  };
}

/** Waits, or stops early when the caller goes away (the loop then sees the abort). */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
