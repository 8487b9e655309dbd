// serve_bad.mjs — abuse of `truthgpt serve` over raw HTTP (node:net, node:http),
// each case followed by a /health check that must pass: malformed JSON, wrong
// types, unknown roles, empty messages, max_tokens out of range, a 20 MB body
// (with Content-Length and chunked), a garbage request line, a client that
// never reads, a client that disconnects mid-stream, 100 concurrent streaming
// requests, and missing or wrong API keys (401). Loopback only.
// Usage: node tests/serve_bad.mjs BASE_URL API_KEY MAX_TOKENS_CAP
import http from 'node:http';
import net from 'node:net';

const [base, apiKey, capArg] = process.argv.slice(2);
if (!base || !base.startsWith('http://127.0.0.1:') || !apiKey || !capArg) {
  console.error('usage: node serve_bad.mjs http://127.0.0.1:PORT API_KEY MAX_TOKENS_CAP');
  process.exit(2);
}
const port = Number(new URL(base).port);
const cap = Number(capArg);
let failures = 0;
function check(cond, what, detail) {
  console.log(`${cond ? 'ok  ' : 'FAIL'} ${what}${!cond && detail !== undefined ? ': ' + JSON.stringify(detail).slice(0, 400) : ''}`);
  if (!cond) failures++;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const auth = { Authorization: 'Bearer ' + apiKey };

// One HTTP request with node:http (no keep-alive); resolves {status, headers, body}.
function request(method, path, { headers = {}, body = null, timeout = 60000 } = {}) {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false, timeout }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(parts).toString() }));
      res.on('error', (e) => resolve({ status: -1, error: e.message }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ status: -1, error: e.message }));
    if (body !== null) req.write(body);
    req.end();
  });
}

async function health(what) {
  const t0 = Date.now();
  const r = await request('GET', '/health', { timeout: 10000 });
  const ms = Date.now() - t0;
  check(r.status === 200 && JSON.parse(r.body || '{}').status === 'ok' && ms < 5000, `  /health after ${what} (${ms} ms)`, r);
}

// An OpenAI-shaped error with the expected status (and param when given).
function isError(r, status, param) {
  if (r.status !== status) return false;
  try {
    const e = JSON.parse(r.body).error;
    return typeof e.message === 'string' && typeof e.type === 'string' && 'param' in e && 'code' in e &&
           (param === undefined || e.param === param);
  } catch (_) {
    return false;
  }
}

const chatPath = '/v1/chat/completions';
const json = { ...auth, 'Content-Type': 'application/json' };
const msgs = [{ role: 'user', content: 'hi' }];
async function badChat(what, body, status, param) {
  const r = await request('POST', chatPath, { headers: json, body: typeof body === 'string' ? body : JSON.stringify(body) });
  check(isError(r, status, param), `${what} -> ${status}${param ? ' (' + param + ')' : ''}`, r);
  await health(what);
}

// Raw socket: send bytes, collect whatever comes back until the server
// closes or `ms` passes. Write errors (the server may close first) are kept.
function raw(chunks, { ms = 10000, readFirst = false } = {}) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.setMaxListeners(0); // one 'drain'/'close' pair per blocked write
    const got = [];
    let writeError = null;
    const done = () => { clearTimeout(t); clearTimeout(settle); s.destroy(); resolve({ text: Buffer.concat(got).toString('latin1'), writeError }); };
    const t = setTimeout(done, ms);
    // readFirst: the answer is in once data has come and 200 ms have passed
    // (headers and body may arrive in separate segments)
    let settle = null;
    s.on('data', (d) => { got.push(d); if (readFirst && !settle) settle = setTimeout(done, 200); });
    s.on('end', done);
    s.on('close', done);
    s.on('error', (e) => { writeError = e.code || e.message; });
    s.on('connect', async () => {
      for (const c of chunks) {
        if (s.destroyed) break;
        const ok = s.write(c);
        if (!ok) await new Promise((r) => { s.once('drain', r); s.once('close', r); });
      }
    });
  });
}

async function metric(name) {
  const r = await request('GET', '/metrics');
  const m = r.body.match(new RegExp('^' + name + ' ([0-9.e+-]+)$', 'm'));
  return m ? Number(m[1]) : NaN;
}

// ---------------------------------------------------------------- cases
await health('start');

await badChat('malformed JSON', '{"messages": [', 400);
await badChat('a JSON array body', '[1,2,3]', 400);
await badChat('invalid UTF-8 in the body', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]), 400);
await badChat('deeply nested JSON', '['.repeat(100000), 400);
await badChat('messages is a string', { messages: 'hi' }, 400, 'messages');
await badChat('temperature is a string', { messages: msgs, temperature: 'hot' }, 400, 'temperature');
await badChat('max_tokens is a string', { messages: msgs, max_tokens: '5' }, 400, 'max_tokens');
await badChat('max_tokens is fractional', { messages: msgs, max_tokens: 2.5 }, 400, 'max_tokens');
await badChat('stream is a string', { messages: msgs, stream: 'yes' }, 400, 'stream');
await badChat('content is a number', { messages: [{ role: 'user', content: 42 }] }, 400, 'messages[0].content');
await badChat('a message that is not an object', { messages: ['hi'] }, 400, 'messages[0]');
await badChat('unknown role', { messages: [{ role: 'wizard', content: 'hi' }] }, 400, 'messages[0].role');
await badChat('missing role', { messages: [{ content: 'hi' }] }, 400, 'messages[0].role');
await badChat('empty messages', { messages: [] }, 400, 'messages');
await badChat('no messages', { model: 'x' }, 400, 'messages');
await badChat('max_tokens negative', { messages: msgs, max_tokens: -5 }, 400, 'max_tokens');
await badChat('max_tokens zero', { messages: msgs, max_tokens: 0 }, 400, 'max_tokens');
await badChat('max_tokens over the cap', { messages: msgs, max_tokens: cap + 1 }, 400, 'max_tokens');
await badChat('max_completion_tokens over the cap', { messages: msgs, max_completion_tokens: cap + 1 }, 400, 'max_completion_tokens');
await badChat('n = 3', { messages: msgs, n: 3 }, 400, 'n');
await badChat('stop is a number', { messages: msgs, stop: 5 }, 400, 'stop');
await badChat('five stop sequences', { messages: msgs, stop: ['a', 'b', 'c', 'd', 'e'] }, 400, 'stop');
await badChat('stream_options without stream', { messages: msgs, stream_options: { include_usage: true } }, 400, 'stream_options');
await badChat('a prompt longer than the context', { messages: [{ role: 'user', content: 'x'.repeat(200000) }] }, 400, 'messages');
{
  const r = await request('POST', '/v1/completions', { headers: json, body: JSON.stringify({ prompt: [1, 2, 99999999] }) });
  check(isError(r, 400, 'prompt'), 'completions: a token id outside the vocabulary -> 400 (prompt)', r);
  const r2 = await request('POST', '/v1/completions', { headers: json, body: JSON.stringify({ prompt: ['a', 'b'] }) });
  check(isError(r2, 400, 'prompt'), 'completions: several prompts -> 400 (prompt)', r2);
  await health('bad completions');
}

// routing
{
  const r = await request('GET', '/v1/nope', { headers: auth });
  check(isError(r, 404), 'an unknown path -> 404', r);
  const r2 = await request('GET', chatPath, { headers: auth });
  check(isError(r2, 405) && /POST/.test(r2.headers.allow || ''), 'GET on chat completions -> 405 with Allow: POST', r2);
  const r3 = await request('DELETE', '/health');
  check(r3.status === 405, 'DELETE /health -> 405', r3);
  await health('routing');
}

// API key
{
  const r1 = await request('GET', '/v1/models');
  check(isError(r1, 401), 'no API key -> 401', r1);
  const r2 = await request('POST', chatPath, { headers: { Authorization: 'Bearer wrong', 'Content-Type': 'application/json' },
                                               body: JSON.stringify({ messages: msgs, max_tokens: 1 }) });
  check(isError(r2, 401), 'a wrong API key -> 401', r2);
  const r3 = await request('GET', '/v1/models', { headers: { Authorization: 'Bearer ' + apiKey + apiKey } });
  check(isError(r3, 401), 'the key twice over -> 401', r3);
  const r4 = await request('GET', '/v1/models', { headers: { Authorization: apiKey } });
  check(isError(r4, 401), 'the key without "Bearer" -> 401', r4);
  const r5 = await request('GET', '/v1/models', { headers: auth });
  check(r5.status === 200, 'the right key -> 200', r5);
  await health('API key checks');
}

// 20 MB bodies
{
  const big = Buffer.alloc(20 * 1024 * 1024, 0x61);
  const head = `POST ${chatPath} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${apiKey}\r\n` +
               `Content-Type: application/json\r\nContent-Length: ${big.length}\r\n\r\n`;
  const r = await raw([head, big.subarray(0, 65536)], { readFirst: true });
  check(/^HTTP\/1\.1 413/.test(r.text) && /"error"/.test(r.text), 'a 20 MB body (Content-Length) -> 413 before it is read', r.text.slice(0, 200));
  await health('a 20 MB body');
  const chunked = [`POST ${chatPath} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${apiKey}\r\n` +
                   'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n'];
  // 3 MB is enough to pass the 1 MB cap mid-body (20 MB more would only cost time)
  for (let i = 0; i < 48; i++) chunked.push((65536).toString(16) + '\r\n', big.subarray(0, 65536), '\r\n');
  chunked.push('0\r\n\r\n');
  const r2 = await raw(chunked, { ms: 20000, readFirst: true });
  check(/^HTTP\/1\.1 413/.test(r2.text) && /"error"/.test(r2.text), 'a 3 MB chunked body -> 413 at its end',
        { text: r2.text.slice(0, 120), err: r2.writeError });
  await health('a 3 MB chunked body');
}

// garbage on the wire
{
  const r = await raw(['GARBAGE\r\n\r\n'], { ms: 2000 });
  check(r.text === '' || /^HTTP\/1\.[01] 4\d\d/.test(r.text), 'a garbage request line -> 4xx or closed', r.text.slice(0, 100));
  await health('a garbage request line');
  // binary junk: the server may just wait for a request line (until its idle timeout)
  const r1 = await raw(['\x00\x01\x02 GARBAGE \xff\xfe\r\n\r\n'], { ms: 2000 });
  check(r1.text === '' || /^HTTP\/1\.[01] 4\d\d/.test(r1.text), 'binary junk -> 4xx, closed or ignored', r1.text.slice(0, 100));
  await health('binary junk');
  const r3 = await raw(['GET / HTTP/9.9\r\n\r\n'], { ms: 2000 });
  check(/^HTTP\/1\.1 505/.test(r3.text), 'an unknown HTTP version -> 505', r3.text.slice(0, 100));
  await health('an unknown HTTP version');
  const r2 = await raw(['GET /health HTTP/1.1\r\nHost: x\r\n' + 'X-Long: ' + 'a'.repeat(200000) + '\r\n\r\n'], { ms: 5000 });
  check(r2.text === '' || /^HTTP\/1\.[01] (4\d\d|200)/.test(r2.text), 'a 200 KB header -> an answer or closed', r2.text.slice(0, 100));
  await health('a huge header');
}

// a client that never reads: its stream fills the socket buffers; others are unaffected
{
  const s = net.connect(port, '127.0.0.1');
  await new Promise((r) => s.on('connect', r));
  s.on('error', () => {});
  s.pause(); // never read
  const body = JSON.stringify({ messages: msgs, max_tokens: cap, stream: true, temperature: 1 });
  s.write(`POST ${chatPath} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${apiKey}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  await sleep(1500);
  await health('a client that never reads (still connected)');
  const ok = await request('POST', chatPath, { headers: json, body: JSON.stringify({ messages: msgs, max_tokens: 4 }) });
  check(ok.status === 200, '  another request completes meanwhile', ok.status);
  s.destroy();
}

// A client that goes away cancels its generation. The reply is greedy and
// runs to the end of the context (unless the model ends it), and the client
// leaves early; several tries, because a fast machine or an early
// end-of-text may finish the reply first: one try must show a cancellation
// (the counter up by one, nothing left running).
async function waitIdle() {
  for (let i = 0; i < 100 && (await metric('truthgpt_running_requests')) > 0; i++) await sleep(50);
}
async function leaveEarly(what, attempt) {
  const tries = [];
  for (let t = 0; t < 6; t++) {
    await waitIdle();
    const before = await metric('truthgpt_requests_cancelled_total');
    const status = await attempt();
    await waitIdle();
    const after = await metric('truthgpt_requests_cancelled_total');
    const running = await metric('truthgpt_running_requests');
    tries.push({ status, cancelled: after - before, running });
    if (after === before + 1 && running === 0) break;
  }
  const last = tries[tries.length - 1];
  check(last.cancelled === 1 && last.running === 0, `${what} (try ${tries.length})`, tries);
  await health(what);
}
const greedyLong = JSON.stringify({ messages: msgs, max_tokens: cap, temperature: 0 });
await leaveEarly('a client that disconnects mid-stream has its request cancelled', () => new Promise((resolve) => {
  const body = JSON.stringify({ messages: msgs, max_tokens: cap, temperature: 0, stream: true });
  const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: chatPath, agent: false,
                             headers: { ...json, 'Content-Length': Buffer.byteLength(body) } }, (res) => {
    res.once('data', () => { req.destroy(); resolve(res.statusCode); });
  });
  req.on('error', () => resolve(-1));
  req.end(body);
}));
await leaveEarly('a client that gives up on a non-streamed request has it cancelled',
                 async () => (await request('POST', chatPath, { headers: json, body: greedyLong, timeout: 5 })).status);

// 100 concurrent streaming requests: each is served or refused with 429, none hangs
{
  const t0 = Date.now();
  const body = JSON.stringify({ messages: msgs, max_tokens: 8, stream: true, temperature: 1 });
  // continuous batching: the engine steps decode several requests at once
  const steps0 = await metric('truthgpt_decode_steps_total'), rows0 = await metric('truthgpt_batch_rows_total');
  const results = await Promise.all(Array.from({ length: 100 }, () => request('POST', chatPath, { headers: json, body, timeout: 120000 })));
  const meanBatch = ((await metric('truthgpt_batch_rows_total')) - rows0) / ((await metric('truthgpt_decode_steps_total')) - steps0);
  const served = results.filter((r) => r.status === 200 && r.body.trimEnd().endsWith('data: [DONE]'));
  const refused = results.filter((r) => isError(r, 429));
  const secs = (Date.now() - t0) / 1000;
  check(served.length + refused.length === 100 && served.length >= 8,
        `100 concurrent streams: ${served.length} served, ${refused.length} refused with 429, in ${secs.toFixed(1)} s`,
        results.filter((r) => !served.includes(r) && !refused.includes(r)).slice(0, 3));
  const wellFormed = served.every((r) => r.body.split('\n\n').filter((x) => x.startsWith('data: {')).every((x) => {
    try { return JSON.parse(x.slice(6)).object === 'chat.completion.chunk'; } catch (_) { return false; }
  }));
  check(wellFormed, '  every served stream is well-formed SSE');
  check(secs < 120, '  within the time bound');
  check(meanBatch >= 1.5, `  requests shared the running batch (${meanBatch.toFixed(2)} per step on average)`);
  await health('100 concurrent streams');
}

// the counters saw all of this
{
  const r = await request('GET', '/metrics');
  check(r.status === 200 && /truthgpt_requests_total\{endpoint="\/v1\/chat\/completions",code="400"\} \d+/.test(r.body) &&
        /truthgpt_completion_tokens_total [1-9]/.test(r.body) && /truthgpt_queue_depth \d+/.test(r.body) &&
        /truthgpt_decode_tokens_per_second [0-9.]+/.test(r.body), '/metrics: requests by code, tokens, queue depth, tokens/s', r.body.slice(0, 300));
}

if (failures) {
  console.error(`${failures} check(s) failed`);
  process.exit(1);
}
console.log('bad input: all checks passed');
