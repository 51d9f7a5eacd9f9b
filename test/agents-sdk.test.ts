import { Agent, run, setDefaultOpenAIClient, setTracingDisabled, tool } from "@openai/agents";
import OpenAI from "openai";
import { afterAll, beforeAll, expect, it } from "vitest";
import { z } from "zod";
import { startAnthropicStandin, type AnthropicStandin } from "./standins/anthropic.ts";
import { startTestGateway, type TestGateway } from "./support/gateway.ts";

// The OpenAI Agents SDK, pointed at the gateway by base URL, runs an agent
// with one function tool on an Anthropic model: the Responses API, tool
// call and tool output round trip, translated both ways.

let anthropic: AnthropicStandin;
let gw: TestGateway;

beforeAll(async () => {
  anthropic = await startAnthropicStandin();
  gw = await startTestGateway({ providers: [{ id: "anthropic", type: "anthropic", baseUrl: anthropic.url, keys: ["sk-ant-test"] }] });
  setDefaultOpenAIClient(new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "unused-on-an-open-gateway", maxRetries: 0 }));
  setTracingDisabled(true);
});

afterAll(async () => {
  await gw?.close();
  await anthropic?.close();
});

it("runs an agent with a function tool through /v1/responses on Anthropic", async () => {
  const calls: string[] = [];
  const getWeather = tool({
    name: "get_weather",
    description: "The weather in a city",
    parameters: z.object({ location: z.string() }),
    execute: async ({ location }) => {
      calls.push(location);
      return `sunny in ${location}`;
    },
  });
  const agent = new Agent({ name: "Weather", instructions: "Answer with the weather.", model: "anthropic/claude-sonnet-4-5", tools: [getWeather] });
  const result = await run(agent, "What is the weather in Paris?");
  expect(calls).toHaveLength(1);
  expect(typeof result.finalOutput).toBe("string");
  expect(String(result.finalOutput).length).toBeGreaterThan(0);
  const upstream = anthropic.requests.filter((r) => r.path === "/v1/messages");
  expect(upstream).toHaveLength(2);
  // The second turn carried the tool's result back to Anthropic as a tool_result block.
  expect(JSON.stringify(upstream[1]!.body)).toContain("sunny in");
  expect(JSON.stringify(upstream[1]!.body)).toContain("tool_result");
}, 30_000);
