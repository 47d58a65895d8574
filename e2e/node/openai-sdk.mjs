// The official openai Node SDK against the proxy. runOpenAI takes the SDK's
// module (openai 7.x, or 6.x under the alias openai6) so one set of cases
// covers both majors; clients.mjs picks which cases each runs.
//
// Markers such as [[scenario:tool_call]] pick the fake backend's behaviour.
import { z } from 'zod';

const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather for a city',
    parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] },
  },
};

// What a structured answer must look like; the fake fills every string
// with the user's text.
const Weather = z.object({ city: z.string(), summary: z.string(), celsius: z.number() });

export const openaiCases = {
  // Chat Completions streamed, with stream_options.include_usage.
  async chat_stream({ client, model, nonce }) {
    const stream = await client.chat.completions.create({
      model,
      messages: [{ role: 'user', content: `stream ${nonce}-stream [[scenario:reasoning_text]]` }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let reasoning = '';
    let finish = null;
    let usage = null;
    let chunks = 0;
    let usageChunkChoices = null;
    for await (const chunk of stream) {
      chunks++;
      for (const c of chunk.choices) {
        text += c.delta?.content ?? '';
        reasoning += c.delta?.reasoning_content ?? '';
        if (c.finish_reason) finish = c.finish_reason;
      }
      if (chunk.usage) {
        usage = chunk.usage;
        usageChunkChoices = chunk.choices.length;
      }
    }
    return { text, reasoning, finish, usage, usageChunkChoices, chunks };
  },

  // Chat Completions, not streamed.
  async chat({ client, model, nonce }) {
    const res = await client.chat.completions.create({
      model,
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: `plain ${nonce}-chat` },
      ],
    });
    return { object: res.object, text: res.choices[0].message.content, finish: res.choices[0].finish_reason, usage: res.usage, model: res.model };
  },

  // A tool-call round trip, not streamed: the model calls get_weather, the
  // client runs it and sends the result back in a second request.
  async tools({ client, model, nonce }) {
    const tools = [weatherTool];
    const messages = [{ role: 'user', content: `weather in Paris ${nonce}-tools [[scenario:tool_call]]` }];
    const first = await client.chat.completions.create({ model, messages, tools });
    const msg = first.choices[0].message;
    const call = msg.tool_calls?.[0];
    if (!call) return { firstFinish: first.choices[0].finish_reason, error: 'no tool call' };
    messages.push(msg);
    messages.push({ role: 'tool', tool_call_id: call.id, content: `sunny-21C-${nonce}` });
    const second = await client.chat.completions.create({ model, messages, tools });
    return {
      firstFinish: first.choices[0].finish_reason,
      call: { id: call.id, name: call.function.name, arguments: call.function.arguments },
      secondFinish: second.choices[0].finish_reason,
      secondText: second.choices[0].message.content,
    };
  },

  // A streamed tool call read chunk by chunk: the client stitches the
  // arguments together by tool_calls[].index, as hand-written code does.
  async chat_stream_tool_raw({ client, model, nonce }) {
    const stream = await client.chat.completions.create({
      model,
      messages: [{ role: 'user', content: `weather in Paris ${nonce}-rawtool [[scenario:tool_call]]` }],
      tools: [weatherTool],
      stream: true,
      stream_options: { include_usage: true },
    });
    const calls = [];
    let finish = null;
    let usage = null;
    let argDeltas = 0;
    for await (const chunk of stream) {
      for (const c of chunk.choices) {
        for (const tc of c.delta?.tool_calls ?? []) {
          const cur = (calls[tc.index] ??= { id: '', name: '', arguments: '' });
          if (tc.id) cur.id = tc.id;
          if (tc.function?.name) cur.name += tc.function.name;
          if (tc.function?.arguments) {
            cur.arguments += tc.function.arguments;
            argDeltas++;
          }
        }
        if (c.finish_reason) finish = c.finish_reason;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    return { calls, finish, usage, argDeltas, args: parseOr(calls[0]?.arguments) };
  },

  // The SDK's streaming helper, which accumulates the chunks itself into
  // finalChatCompletion(); its accumulation differs between majors.
  async chat_stream_tool({ client, model, nonce }) {
    const stream = client.chat.completions.stream({
      model,
      messages: [{ role: 'user', content: `weather in Paris ${nonce}-helpertool [[scenario:tool_call]]` }],
      tools: [weatherTool],
      stream_options: { include_usage: true },
    });
    let argEvents = 0;
    stream.on('tool_calls.function.arguments.delta', () => argEvents++);
    const final = await stream.finalChatCompletion();
    const choice = final.choices[0];
    const call = choice.message.tool_calls?.[0];
    return {
      finish: choice.finish_reason,
      call: call && { id: call.id, name: call.function.name, arguments: call.function.arguments },
      args: parseOr(call?.function.arguments),
      argEvents,
      usage: final.usage ?? null,
    };
  },

  // Structured output on chat: response_format json_schema, parsed by the
  // SDK's zod helper.
  async chat_structured({ client, model, nonce, zodResponseFormat }) {
    const res = await client.chat.completions.parse({
      model,
      messages: [{ role: 'user', content: `weather as json ${nonce}-chatjson` }],
      response_format: zodResponseFormat(Weather, 'weather'),
    });
    const msg = res.choices[0].message;
    return { finish: res.choices[0].finish_reason, parsed: msg.parsed, refusal: msg.refusal ?? null };
  },

  // Responses API, streamed.
  async responses_stream({ client, model, nonce }) {
    const stream = await client.responses.create({ model, input: `responses ${nonce}-responses`, stream: true });
    const types = [];
    let text = '';
    let status = null;
    let usage = null;
    for await (const ev of stream) {
      if (!types.includes(ev.type)) types.push(ev.type);
      if (ev.type === 'response.output_text.delta') text += ev.delta;
      if (ev.type === 'response.completed') {
        status = ev.response.status;
        usage = ev.response.usage;
      }
    }
    return { text, types, status, usage };
  },

  // Responses API, not streamed.
  async responses({ client, model, nonce }) {
    const res = await client.responses.create({ model, input: `responses plain ${nonce}-responses-plain` });
    return { status: res.status, text: res.output_text, usage: res.usage };
  },

  // A Responses function call, streamed; the client answers it with a
  // function_call_output (store is off upstream, so it re-sends the call).
  async responses_tool({ client, model, nonce }) {
    const tools = [{ type: 'function', name: 'get_weather', description: 'Current weather for a city', strict: false, parameters: weatherTool.function.parameters }];
    const input = [{ role: 'user', content: `weather in Paris ${nonce}-resptool [[scenario:tool_call]]` }];
    const stream = await client.responses.create({ model, input, tools, stream: true });
    let deltas = '';
    let doneArgs = null;
    let call = null;
    let status = null;
    for await (const ev of stream) {
      if (ev.type === 'response.function_call_arguments.delta') deltas += ev.delta;
      if (ev.type === 'response.function_call_arguments.done') doneArgs = ev.arguments;
      if (ev.type === 'response.output_item.done' && ev.item.type === 'function_call') call = ev.item;
      if (ev.type === 'response.completed') status = ev.response.status;
    }
    if (!call) return { status, error: 'no function call' };
    input.push({ type: 'function_call', call_id: call.call_id, name: call.name, arguments: call.arguments });
    input.push({ type: 'function_call_output', call_id: call.call_id, output: `cloudy-12C-${nonce}` });
    const second = await client.responses.create({ model, input, tools });
    return {
      status,
      call: { callId: call.call_id, name: call.name, arguments: call.arguments },
      deltas,
      doneArgs,
      args: parseOr(call.arguments),
      secondStatus: second.status,
      secondText: second.output_text,
    };
  },

  // Structured output on Responses: text.format json_schema, parsed by the
  // SDK's zod helper into output_parsed.
  async responses_structured({ client, model, nonce, zodTextFormat }) {
    const res = await client.responses.parse({
      model,
      input: `weather as json ${nonce}-respjson`,
      text: { format: zodTextFormat(Weather, 'weather') },
    });
    return { status: res.status, parsed: res.output_parsed };
  },
};

function parseOr(s) {
  try {
    return JSON.parse(s);
  } catch {
    return null;
  }
}

// runOpenAI runs the named cases with one client of the given SDK.
export async function runOpenAI({ OpenAI, version, helpers, cases, env }) {
  const client = new OpenAI({ baseURL: env.baseURL, apiKey: env.apiKey, maxRetries: 0, timeout: 30_000 });
  const out = { sdk: version };
  for (const name of cases) {
    out[name] = await capture(() => openaiCases[name]({ client, model: env.model, nonce: env.nonce, ...helpers }));
  }
  return out;
}

// capture turns a thrown error into a result the Go test prints.
export async function capture(fn) {
  try {
    return await fn();
  } catch (err) {
    return { error: String(err?.message ?? err), status: err?.status ?? err?.statusCode ?? null };
  }
}
