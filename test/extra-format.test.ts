import { describe, expect, it } from "vitest";
import { GatewayError } from "../server/errors/errors.ts";
import { decodeMessagesRequest } from "../server/wire/anthropic/request-decode.ts";
import { decodeChatRequest, encodeChatRequest } from "../server/wire/openai/chat-request.ts";

// Untyped fields travel only to providers that speak the format they were
// written in; elsewhere they are dropped when they are mere hints, or refused.

const stream = { stream: false, includeUsage: false };

describe("extra fields across formats", () => {
  it("OpenAI caller to an OpenAI-format provider: passed through untouched", () => {
    const { request } = decodeChatRequest({ model: "m", messages: [{ role: "user", content: "x", cache_hint: 1 }], logit_bias: { "1": 2 }, new_field: true });
    const out = encodeChatRequest(request, "m", stream);
    expect(out).toMatchObject({ logit_bias: { "1": 2 }, new_field: true });
    expect((out["messages"] as object[])[0]).toMatchObject({ cache_hint: 1 });
  });

  it("Anthropic caller to an OpenAI-format provider: hints dropped, original blocks not forwarded", () => {
    const { request } = decodeMessagesRequest({
      model: "m",
      max_tokens: 10,
      thinking: { type: "enabled", budget_tokens: 1024 },
      system: [{ type: "text", text: "be brief", cache_control: { type: "ephemeral" } }],
      messages: [{ role: "user", content: [{ type: "text", text: "hi", cache_control: { type: "ephemeral" } }] }],
    });
    const out = encodeChatRequest(request, "m", stream);
    expect(out["thinking"]).toBeUndefined();
    expect(JSON.stringify(out)).not.toContain("cache_control");
    expect(out["messages"]).toEqual([{ role: "system", content: "be brief" }, { role: "user", content: [{ type: "text", text: "hi" }] }]);
  });

  it("Anthropic caller with a field OpenAI cannot carry: a 400 naming it", () => {
    const { request } = decodeMessagesRequest({ model: "m", max_tokens: 10, messages: [{ role: "user", content: "hi" }], mystery_option: 1 });
    let err: unknown;
    try {
      encodeChatRequest(request, "m", stream);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe("unsupported");
    expect((err as GatewayError).param).toBe("mystery_option");
  });
});
