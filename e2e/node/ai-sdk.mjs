// The Vercel AI SDK (ai 7 with @ai-sdk/openai 4) against the proxy, on
// both of its OpenAI models: provider.chat() (Chat Completions) and
// provider.responses() (the Responses API).
import { generateObject, generateText, Output, stepCountIs, streamText, tool } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { z } from 'zod';
import { capture } from './openai-sdk.mjs';

const Weather = z.object({ city: z.string(), summary: z.string(), celsius: z.number() });

// summary keeps what a user of the SDK looks at after a call.
async function summary(res) {
  const steps = await res.steps;
  return {
    text: await res.text,
    finishReason: await res.finishReason,
    usage: await res.totalUsage,
    steps: steps.length,
  };
}

// weatherTools is a tool the SDK runs itself; calls records what it got.
function weatherTools(nonce, calls) {
  return {
    get_weather: tool({
      description: 'Current weather for a city',
      inputSchema: z.object({ location: z.string() }),
      execute: async ({ location }) => {
        calls.push(location);
        return `sunny-21C-${nonce}`;
      },
    }),
  };
}

// toolSteps describes a multi-step run: the call the model made, what the
// tool returned, and the final answer.
async function toolSteps(res, calls) {
  const steps = await res.steps;
  const first = steps[0];
  return {
    ...(await summary(res)),
    executed: calls,
    firstFinish: first?.finishReason ?? null,
    toolCalls: first?.toolCalls.map((c) => ({ id: c.toolCallId, name: c.toolName, input: c.input })) ?? [],
    toolResults: first?.toolResults.map((r) => r.output) ?? [],
  };
}

// On responses() the SDK's default store: true makes later steps refer to
// earlier output items by id (item_reference), which the proxy resolves
// from the user's stored responses; store: false sends them inline,
// reasoning included as encrypted_content. Both are run.
const stateless = { openai: { store: false } };

export async function runAI(env) {
  const provider = createOpenAI({ baseURL: env.baseURL, apiKey: env.apiKey });
  const models = { chat: provider.chat(env.model), responses: provider.responses(env.model) };
  const { nonce } = env;
  const out = {};
  for (const [api, model] of Object.entries(models)) {
    const tag = `${nonce}-ai-${api}`;
    const providerOptions = api === 'responses' ? stateless : undefined;
    out[`${api}_generate`] = await capture(async () => {
      const res = await generateText({ model, prompt: `hello ${tag}-gen`, maxRetries: 0 });
      return summary(res);
    });
    out[`${api}_stream`] = await capture(async () => {
      const res = streamText({ model, prompt: `hello ${tag}-stream`, maxRetries: 0 });
      let deltas = 0;
      let streamed = '';
      for await (const d of res.textStream) {
        deltas++;
        streamed += d;
      }
      return { ...(await summary(res)), streamed, deltas };
    });
    // The SDK runs the tool and sends the result back by itself (two steps).
    out[`${api}_tools_stream`] = await capture(async () => {
      const calls = [];
      const res = streamText({
        model,
        prompt: `weather in Paris ${tag}-streamtool [[scenario:reasoning_tool_call]]`,
        tools: weatherTools(nonce, calls),
        stopWhen: stepCountIs(3),
        providerOptions,
        maxRetries: 0,
      });
      await res.consumeStream();
      return toolSteps(res, calls);
    });
    out[`${api}_tools`] = await capture(async () => {
      const calls = [];
      const res = await generateText({
        model,
        prompt: `weather in Paris ${tag}-tools [[scenario:reasoning_tool_call]]`,
        tools: weatherTools(nonce, calls),
        stopWhen: stepCountIs(3),
        providerOptions,
        maxRetries: 0,
      });
      return toolSteps(res, calls);
    });
    if (api === 'responses') {
      // The SDK's defaults: the second step refers to the reasoning item
      // and the call by id (item_reference), resolved by the proxy.
      out.responses_tools_store_default = await capture(async () => {
        const calls = [];
        const res = await generateText({
          model,
          prompt: `weather in Paris ${tag}-storedefault [[scenario:reasoning_tool_call]]`,
          tools: weatherTools(nonce, calls),
          stopWhen: stepCountIs(3),
          maxRetries: 0,
        });
        return toolSteps(res, calls);
      });
    }
    // Structured output the v7 way (generateText with Output.object) and
    // the older generateObject, which v7 still ships.
    out[`${api}_output_object`] = await capture(async () => {
      const res = await generateText({ model, prompt: `weather as json ${tag}-output`, output: Output.object({ schema: Weather }), maxRetries: 0 });
      return { object: res.output, finishReason: res.finishReason, usage: res.totalUsage };
    });
    out[`${api}_generate_object`] = await capture(async () => {
      const res = await generateObject({ model, prompt: `weather as json ${tag}-object`, schema: Weather, maxRetries: 0 });
      return { object: res.object, finishReason: res.finishReason, usage: res.usage };
    });
  }
  return out;
}
