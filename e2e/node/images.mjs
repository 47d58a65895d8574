// The openai SDK 7's Images API and the Responses image_generation tool
// against the proxy; prints one JSON object for e2e/images_test.go. Each
// image comes back as its base64 PNG's first bytes and length, which the
// Go side decodes in full from b64 fields.
import OpenAI, { toFile } from 'openai';

const client = new OpenAI();
const denied = new OpenAI({ apiKey: process.env.DENIED_KEY });
const out = {};

const gen = await client.images.generate({ model: 'gpt-image-2', prompt: 'a red fox', size: '64x64' });
out.generate = { b64: gen.data[0].b64_json, usage: gen.usage };

const png = Buffer.from(gen.data[0].b64_json, 'base64');
const edit = await client.images.edit({
  model: 'gpt-image-2',
  prompt: 'make it blue',
  image: [await toFile(png, 'fox.png', { type: 'image/png' })],
  mask: await toFile(png, 'mask.png', { type: 'image/png' }),
  size: '32x32',
});
out.edit = { b64: edit.data[0].b64_json };

const stream = await client.images.generate({ model: 'gpt-image-2', prompt: 'a fox, streamed', size: '32x32', stream: true, partial_images: 2 });
out.stream = { partials: 0, completed: null };
for await (const ev of stream) {
  if (ev.type === 'image_generation.partial_image') out.stream.partials++;
  if (ev.type === 'image_generation.completed') out.stream.completed = ev.b64_json;
}

const resp = await client.responses.create({
  model: 'gpt-5.5',
  input: 'draw a fox',
  tools: [{ type: 'image_generation', model: 'gpt-image-2', size: '32x32' }],
});
const call = resp.output.find((o) => o.type === 'image_generation_call');
out.responses = { b64: call?.result ?? null };

try {
  await denied.images.generate({ model: 'gpt-image-2', prompt: 'a fox' });
  out.denied = { status: 200 };
} catch (e) {
  out.denied = { status: e.status, code: e.code };
}

console.log(JSON.stringify(out));
