// The official OpenAI SDK, unchanged but for baseURL, talking to costgate.
// Run `make run` in another terminal first, then: node examples/hello_openai.mjs
import OpenAI from 'openai';

const client = new OpenAI({
  baseURL: process.env.COSTGATE_URL || 'http://127.0.0.1:8080/v1',
  apiKey: process.env.COSTGATE_KEY || 'cg-demo-key', // a gateway key, not a provider key
});

const { data, response } = await client.chat.completions
  .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello in five words.' }] })
  .withResponse();
console.log('answer:', data.choices[0].message.content);
console.log('usage :', JSON.stringify(data.usage));
console.log('cost  : $' + response.headers.get('x-costgate-cost-usd'),
  '(request', response.headers.get('x-costgate-request-id') + ')');

const stream = await client.chat.completions.create({
  model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'Now stream it.' }],
});
let text = '';
for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
console.log('stream:', text);
