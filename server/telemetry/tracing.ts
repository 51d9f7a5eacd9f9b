import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type TextMapGetter, type TextMapSetter, type Tracer } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import type { Usage } from "../../gen/switchyard/v1/common_pb.ts";

/**
 * OpenTelemetry traces following the GenAI semantic conventions: a SERVER
 * span per request and a CLIENT span per upstream attempt, continuing the
 * caller's W3C `traceparent` and passing the attempt's own upstream. With no
 * exporter configured, only the caller's trace headers are forwarded: no
 * spans are created, so tracing costs nothing measurable.
 * https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/
 */
export interface Tracing {
  readonly enabled: boolean;
  startRequest(operation: GenAiOperation, traceparent: string | undefined, tracestate: string | undefined): RequestTrace;
  shutdown(): Promise<void>;
}

/** "chat" or "embeddings", as gen_ai.operation.name. */
export type GenAiOperation = "chat" | "embeddings";

export interface RequestTrace {
  /** A child span for one upstream call; its headers go upstream. */
  startAttempt(provider: string, model: string, attributes: Attributes | undefined): AttemptTrace;
  end(outcome: SpanOutcome): void;
}

export interface AttemptTrace {
  /** traceparent/tracestate for the upstream request; undefined when there is nothing to continue. */
  readonly headers: Readonly<Record<string, string>> | undefined;
  end(outcome: SpanOutcome): void;
}

export interface SpanOutcome {
  /** A gateway error code when it failed. */
  errorCode?: string | undefined;
  errorMessage?: string | undefined;
  usage?: Usage | undefined;
  responseModel?: string | undefined;
  responseId?: string | undefined;
  finishReasons?: string[] | undefined;
}

export interface TracingOptions {
  /** OTLP/HTTP base endpoint (OTEL_EXPORTER_OTLP_ENDPOINT); spans go to <endpoint>/v1/traces. */
  endpoint?: string | undefined;
  /** Full traces URL (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), used as is. */
  tracesEndpoint?: string | undefined;
  serviceName: string;
  /** Exporter headers (OTEL_EXPORTER_OTLP_HEADERS), e.g. an auth token for the collector. */
  headers?: Record<string, string>;
  /** How often finished spans are exported (default 1 s). */
  flushMs?: number;
}

const propagator = new W3CTraceContextPropagator();

const getter: TextMapGetter<{ traceparent?: string | undefined; tracestate?: string | undefined }> = {
  keys: () => ["traceparent", "tracestate"],
  get: (carrier, key) => (key === "traceparent" ? carrier.traceparent : key === "tracestate" ? carrier.tracestate : undefined),
};

const setter: TextMapSetter<Record<string, string>> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

const NOOP_ATTEMPT: AttemptTrace = { headers: undefined, end() {} };
const NOOP_REQUEST: RequestTrace = { startAttempt: () => NOOP_ATTEMPT, end() {} };

export async function createTracing(options: TracingOptions): Promise<Tracing> {
  const url = options.tracesEndpoint ?? (options.endpoint ? `${options.endpoint.replace(/\/+$/, "")}/v1/traces` : undefined);
  if (url === undefined) return passthroughTracing();
  // The SDK and exporter (about 150 ms and 25 MB to load) only when traces are exported.
  const [{ OTLPTraceExporter }, { resourceFromAttributes }, { BatchSpanProcessor, TracerProvider }] = await Promise.all([
    import("@opentelemetry/exporter-trace-otlp-http"),
    import("@opentelemetry/resources"),
    import("@opentelemetry/sdk-trace"),
  ]);

  const provider = new TracerProvider({
    resource: resourceFromAttributes({ "service.name": options.serviceName }),
    spanProcessors: [new BatchSpanProcessor({
      exporter: new OTLPTraceExporter({ url, headers: options.headers ?? {} }),
      // Exported in the background; a slow collector drops spans (bounded queue), never slows requests.
      scheduledDelayMillis: options.flushMs ?? 1000,
    })],
  });
  const tracer: Tracer = provider.getTracer("switchyard");

  return {
    enabled: true,
    startRequest(operation, traceparent, tracestate) {
      const parent: Context = traceparent ? propagator.extract(ROOT_CONTEXT, { traceparent, tracestate }, getter) : ROOT_CONTEXT;
      const span = tracer.startSpan(`${operation}`, { kind: SpanKind.SERVER, attributes: { "gen_ai.operation.name": operation } }, parent);
      const ctx = trace.setSpan(parent, span);
      return {
        startAttempt(providerId, model, attributes) {
          span.updateName(`${operation} ${model}`);
          span.setAttributes({ "gen_ai.system": providerId, "gen_ai.provider.name": providerId, "gen_ai.request.model": model });
          const attempt = tracer.startSpan(`${operation} ${model}`, {
            kind: SpanKind.CLIENT,
            attributes: { "gen_ai.operation.name": operation, "gen_ai.system": providerId, "gen_ai.provider.name": providerId, "gen_ai.request.model": model, ...attributes },
          }, ctx);
          const headers: Record<string, string> = {};
          propagator.inject(trace.setSpan(ROOT_CONTEXT, attempt), headers, setter);
          return { headers, end: (outcome) => endSpan(attempt, outcome) };
        },
        end: (outcome) => endSpan(span, outcome),
      };
    },
    shutdown: () => provider.shutdown(),
  };
}

/** Tracing off: no spans; the caller's trace context still travels upstream unchanged. */
function passthroughTracing(): Tracing {
  return {
    enabled: false,
    startRequest(_operation, traceparent, tracestate) {
      if (!traceparent) return NOOP_REQUEST;
      const headers: Record<string, string> = tracestate ? { traceparent, tracestate } : { traceparent };
      const attempt: AttemptTrace = { headers, end() {} };
      return { startAttempt: () => attempt, end() {} };
    },
    shutdown: async () => {},
  };
}

function endSpan(span: Span, o: SpanOutcome): void {
  const a: Attributes = {};
  if (o.usage) {
    a["gen_ai.usage.input_tokens"] = o.usage.promptTokens;
    a["gen_ai.usage.output_tokens"] = o.usage.completionTokens;
    if (o.usage.cachedTokens) a["gen_ai.usage.cache_read.input_tokens"] = o.usage.cachedTokens;
    if (o.usage.cacheWriteTokens) a["gen_ai.usage.cache_creation.input_tokens"] = o.usage.cacheWriteTokens;
  }
  if (o.responseModel) a["gen_ai.response.model"] = o.responseModel;
  if (o.responseId) a["gen_ai.response.id"] = o.responseId;
  if (o.finishReasons?.length) a["gen_ai.response.finish_reasons"] = o.finishReasons;
  if (o.errorCode) {
    a["error.type"] = o.errorCode;
    span.setStatus({ code: SpanStatusCode.ERROR, ...(o.errorMessage ? { message: o.errorMessage } : {}) });
  }
  span.setAttributes(a);
  span.end();
}
