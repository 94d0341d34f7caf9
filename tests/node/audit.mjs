// The GraphQL-over-HTTP spec's server audits (graphql-http's `serverAudits`) against a live
// server: `node audit.mjs http://127.0.0.1:PORT/graphql`.
// Prints one line per audit on stderr, and every result as a JSON array on the last stdout
// line; exits 1 when any audit is not "ok" (tests/api/test_http_node.py asserts on each one).
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs URL');
  process.exit(2);
}

const results = [];
// One at a time: the audits are short, and the server shares the machine with the tests.
for (const audit of serverAudits({ url })) {
  const result = await audit.fn();
  const entry = { id: audit.id, name: audit.name, status: result.status };
  if (result.status !== 'ok') {
    entry.reason = result.reason;
    entry.responseStatus = result.response ? result.response.status : null;
  }
  results.push(entry);
  console.error(`${entry.status.padEnd(6)} ${entry.id} ${entry.name}${entry.reason ? ` (${entry.reason})` : ''}`);
}
console.log(JSON.stringify(results));
process.exit(results.every((r) => r.status === 'ok') ? 0 : 1);
