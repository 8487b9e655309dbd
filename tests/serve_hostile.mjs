// serve_hostile.mjs — requests that try to smuggle or starve `truthgpt serve`,
// over raw sockets to 127.0.0.1 only (some from the local addresses
// 127.0.0.2/3 to look like other clients): two Content-Lengths, Content-Length
// with chunked, an unsupported transfer coding, a chunked body that never
// ends, a client sending a header byte every 300 ms, %00 in a path, NUL in a
// role, a client over its connection limit, and every data connection held
// by slow clients while /health must still answer. Every wait is bounded.
// The server must run with --max-connections 8 --max-connections-per-client 4
// --request-timeout 3 and no --api-key.
// Usage: node tests/serve_hostile.mjs http://127.0.0.1:PORT
import net from 'node:net';

const [base] = process.argv.slice(2);
if (!base || !base.startsWith('http://127.0.0.1:')) {
  console.error('usage: node serve_hostile.mjs http://127.0.0.1:PORT');
  process.exit(2);
}
const port = Number(new URL(base).port);
const TIMEOUT_S = 3; // the server's --request-timeout
let failures = 0;
function check(cond, what, detail) {
  console.log(`${cond ? 'ok  ' : 'FAIL'} ${what}${!cond && detail !== undefined ? ': ' + JSON.stringify(detail).slice(0, 400) : ''}`);
  if (!cond) failures++;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Sends chunks (strings, or numbers = pause ms) on a fresh connection from
// localAddress and collects the reply until the server closes or `ms` pass.
// Resolves {text, closed, ms}: closed says the server ended the connection.
function raw(chunks, { ms = 8000, from = '127.0.0.1' } = {}) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const s = net.connect({ port, host: '127.0.0.1', localAddress: from });
    const got = [];
    let closed = false, finished = false;
    const done = () => {
      if (finished) return;
      finished = true;
      clearTimeout(t);
      s.destroy();
      resolve({ text: Buffer.concat(got).toString('latin1'), closed, ms: Date.now() - t0 });
    };
    const t = setTimeout(done, ms);
    s.on('data', (d) => got.push(d));
    s.on('end', () => { closed = true; done(); });
    s.on('close', () => { closed = true; done(); });
    s.on('error', () => { closed = true; });
    s.on('connect', async () => {
      for (const c of chunks) {
        if (s.destroyed) break;
        if (typeof c === 'number') await sleep(c);
        else s.write(c);
      }
    });
  });
}
const status = (text) => { const m = text.match(/^HTTP\/1\.1 (\d{3})/); return m ? Number(m[1]) : -1; };
const responses = (text) => (text.match(/HTTP\/1\.1 \d{3}/g) || []).length;

// A connection held open: a request line and then a header byte every
// 300 ms, never finished. Resolves when the server closes it.
function slowClient(from) {
  const chunks = ['GET /v1/models HTTP/1.1\r\nHost: x\r\n'];
  for (let i = 0; i < 40; i++) chunks.push(300, 'X');
  return raw(chunks, { ms: 15000, from });
}

async function health(what, from = '127.0.0.1') {
  const r = await raw(['GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'], { ms: 3000, from });
  check(status(r.text) === 200 && r.text.includes('"ok"'), `  /health after ${what} (${r.ms} ms)`, r.text);
}

const chat = JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
const smuggled = 'GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n';

// ---------------------------------------------------------------- framing
{
  const r = await raw([`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${chat.length}\r\nContent-Length: 5\r\n\r\n${chat}${smuggled}`]);
  check(status(r.text) === 400 && responses(r.text) === 1 && r.closed,
        'two different Content-Length headers -> 400, closed, the smuggled request never answered', r);
  await health('two Content-Lengths');
}
{
  const r = await raw([`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: ${chat.length}\r\n` +
    `Content-Length: ${chat.length}\r\n\r\n${chat}`]);
  check(status(r.text) === 400 && r.closed, 'two equal Content-Length headers -> 400, closed', r);
}
{
  const body = `${chat.length.toString(16)}\r\n${chat}\r\n0\r\n\r\n`;
  const r = await raw([`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n` +
    `Transfer-Encoding: chunked\r\n\r\n${body}${smuggled}`]);
  check(status(r.text) === 400 && responses(r.text) === 1 && r.closed,
        'Content-Length with Transfer-Encoding: chunked -> 400, closed, nothing smuggled', r);
  await health('CL + TE');
}
{
  const r = await raw([`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nxxxx`]);
  check(status(r.text) === 501 && r.closed && r.ms < 2000, `Transfer-Encoding: gzip -> 501 at once (${r.ms} ms)`, r);
  const r2 = await raw([`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n`]);
  check(status(r2.text) === 501 && r2.closed, 'Transfer-Encoding: gzip, chunked -> 501', r2);
  await health('unsupported transfer codings');
}

// ---------------------------------------------------------------- deadline
{
  const chunks = ['POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n', '2\r\n{"\r\n'];
  for (let i = 0; i < 30; i++) chunks.push(200, '1\r\n \r\n'); // a chunk every 200 ms, never the last
  const r = await raw(chunks, { ms: 12000 });
  check(status(r.text) === 408 && r.closed && r.ms < (TIMEOUT_S + 2) * 1000,
        `a chunked body that never ends -> 408 and closed after ${r.ms} ms (deadline ${TIMEOUT_S} s)`, r);
}
{
  const r = await slowClient('127.0.0.1');
  check(r.closed && r.ms < (TIMEOUT_S + 2) * 1000 && status(r.text) === 408,
        `a header byte every 300 ms -> cut after ${r.ms} ms (each byte used to reset the timeout)`, r);
  await health('a slow client');
}

// ---------------------------------------------------------------- paths, roles
{
  const r = await raw(['GET /health%00.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
  check(status(r.text) === 400 && r.text.includes('%00'), '%00 in the path -> 400', r.text);
  const r2 = await raw(['GET /v1/models%00 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
  check(status(r2.text) === 400, '%00 at the end of a path -> 400', r2.text);
}
{
  const body = '{"messages":[{"role":"user\\u0000x","content":"hi"}],"max_tokens":2}';
  const r = await raw([`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${body.length}\r\n\r\n${body}`]);
  check(status(r.text) === 400 && r.text.includes('messages[0].role'), 'NUL inside a role -> 400 naming the role', r.text);
}

// ---------------------------------------------------------------- connection limits
{
  // 4 slow clients from 127.0.0.1 fill its per-client limit of 4 ...
  const slow = [];
  for (let i = 0; i < 4; i++) slow.push(slowClient('127.0.0.1'));
  await sleep(300);
  const over = await raw(['GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'], { ms: 3000 });
  check(status(over.text) === 429 && over.closed, 'a 5th connection from the same client -> 429', over.text);
  const other = await raw(['GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'], { ms: 3000, from: '127.0.0.2' });
  check(status(other.text) === 200, '... while another client is served', other.text);
  // ... and 4 more from 127.0.0.2 fill the global limit of 8.
  for (let i = 0; i < 4; i++) slow.push(slowClient('127.0.0.2'));
  await sleep(300);
  const full = await raw(['GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'], { ms: 3000, from: '127.0.0.3' });
  check(status(full.text) === 503 && full.closed, 'every data connection held: a new client gets 503', full.text);
  const h = await raw(['GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'], { ms: 3000, from: '127.0.0.3' });
  check(status(h.text) === 200 && h.ms < 1500, `... and /health still answers, on a reserved connection (${h.ms} ms)`, h.text);
  // A reserved connection that sends nothing is dropped quickly.
  const idle = await raw([], { ms: 8000, from: '127.0.0.3' });
  check(idle.closed && idle.ms < 4000, `an idle reserved connection is dropped after ${idle.ms} ms`, idle);
  const cut = await Promise.all(slow);
  check(cut.every((r) => r.closed && r.ms < (TIMEOUT_S + 2) * 1000), 'the slow clients are all cut by the deadline',
        cut.map((r) => r.ms));
  await health('the connection limits');
}
// Normal service afterwards.
{
  const r = await raw([`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${chat.length}\r\n\r\n${chat}`], { ms: 30000 });
  check(status(r.text) === 200 && r.text.includes('chat.completion'), 'a well-formed chat request still gets 200', r.text);
}

console.log(failures ? `serve_hostile: ${failures} FAILED` : 'serve_hostile: all passed');
process.exit(failures ? 1 : 0);
