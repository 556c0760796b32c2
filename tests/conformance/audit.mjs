// The graphql-http package's GraphQL-over-HTTP server audit, run against a live Corridor.
//
//   CORRIDOR_API_KEY=cor_test_... node audit.mjs http://127.0.0.1:8000/graphql
//
// Every request the audit makes carries `Authorization: Bearer <key>` (Corridor answers 401
// without one). The key comes from the environment, not the command line, so it never shows
// in a process list. Prints one JSON array to stdout: per audit {id, name, status, reason},
// where status is graphql-http's own: "ok", or for a failed audit "error" (MUST), "warn"
// (SHOULD) or "notice" (MAY); a failed audit also carries the response it judged
// {status, contentType, body} so a failure can be read without rerunning it.

import { serverAudits } from 'graphql-http';

const bodyCharsMax = 500;

function usage(message) {
  process.stderr.write(`${message}\nusage: CORRIDOR_API_KEY=<key> node audit.mjs <graphql url>\n`);
  process.exit(2);
}

function authorized(apiKey) {
  return (input, init = {}) => {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${apiKey}`);
    return fetch(input, { ...init, headers });
  };
}

async function seen(response) {
  if (!response) return null;
  let body;
  try {
    body = (await response.clone().text()).slice(0, bodyCharsMax);
  } catch (error) {
    body = `<unreadable: ${error}>`; // the audit already consumed it
  }
  return { status: response.status, contentType: response.headers.get('content-type'), body };
}

async function run(url, apiKey) {
  const audits = serverAudits({ url, fetchFn: authorized(apiKey) });
  const results = [];
  for (const { fn } of audits) { // one at a time: the server under test is on a small machine
    const result = await fn();
    const row = { id: result.id, name: result.name, status: result.status,
                  reason: result.reason ?? null };
    if (result.status !== 'ok') row.response = await seen(result.response);
    results.push(row);
  }
  return results;
}

const [url] = process.argv.slice(2);
const apiKey = process.env.CORRIDOR_API_KEY;
if (!url || process.argv.length !== 3) usage('give exactly one argument: the GraphQL URL');
if (!URL.canParse(url)) usage(`not a URL: ${url}`);
if (!apiKey) usage('set CORRIDOR_API_KEY to an API key of the server under test');

process.stdout.write(`${JSON.stringify(await run(url, apiKey), null, 2)}\n`);
