import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ChatRequestSchema, Role } from "../gen/switchyard/v1/chat_pb.ts";
import { toChatCompletion } from "../server/providers/gemini/from-gemini.ts";
import { toGeminiRequest } from "../server/providers/gemini/to-gemini.ts";

// Gemini thinking models sign their function calls and refuse a follow-up turn
// that drops the signature: it travels inside the tool-call id and comes back.

describe("Gemini thought signatures", () => {
  it("a signed function call's signature returns with the call in the next turn", () => {
    const completion = toChatCompletion({
      candidates: [{
        index: 0,
        finishReason: "STOP",
        content: { role: "model", parts: [{ functionCall: { name: "get_weather", args: { city: "Paris" } }, thoughtSignature: "CvQBAVJ/zv8sig==" }] },
      }],
      usageMetadata: { promptTokenCount: 5, candidatesTokenCount: 3, totalTokenCount: 8 },
    }, "gemini-3-pro");
    const call = completion.choices[0]!.message!.toolCalls[0]!;
    expect(call.id).toContain("CvQBAVJ/zv8sig==");

    const next = create(ChatRequestSchema, {
      model: "gemini-3-pro",
      messages: [
        { role: Role.USER, content: [{ part: { case: "text", value: "weather?" } }] },
        { role: Role.ASSISTANT, toolCalls: [call] },
        { role: Role.TOOL, toolCallId: call.id, content: [{ part: { case: "text", value: "sunny" } }] },
      ],
    });
    const body = toGeminiRequest(next);
    const model = body.contents.find((c) => c.role === "model")!;
    expect(model.parts[0]).toEqual({ functionCall: { name: "get_weather", args: { city: "Paris" } }, thoughtSignature: "CvQBAVJ/zv8sig==" });
    const user = body.contents.at(-1)!;
    expect(user.parts[0]!.functionResponse?.name).toBe("get_weather");
  });

  it("unsigned calls keep plain ids and send no signature", () => {
    const completion = toChatCompletion({
      candidates: [{ index: 0, finishReason: "STOP", content: { role: "model", parts: [{ functionCall: { name: "f", args: {} } }] } }],
    }, "gemini-2.0-flash");
    expect(completion.choices[0]!.message!.toolCalls[0]!.id).toBe("call_0");
  });
});
