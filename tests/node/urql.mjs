// urql's core Client with its default options against a live server:
// `node urql.mjs http://127.0.0.1:PORT/graphql EMAIL [TAG]`
// (TAG names the operations, so each run's documents and hashes are new).
// Default options: `cacheExchange` + `fetchExchange`, `preferGetMethod` left at its default
// ("within-url-limit", so short queries go over GET). The fetch passed in only records each
// request's method and hands it to the global fetch unchanged.
// A client with the access token in `fetchOptions` reads `me`.
// Another adds `@urql/exchange-persisted` with its defaults (hash over GET first, then
// the document on a miss). Prints one JSON object on stdout.
import { Client, cacheExchange, fetchExchange, gql } from '@urql/core';
import { persistedExchange } from '@urql/exchange-persisted';

const [url, email, tag = 'run'] = process.argv.slice(2);
if (!url || !email) {
  console.error('usage: node urql.mjs URL EMAIL [TAG]');
  process.exit(2);
}

const requests = [];
const recordingFetch = (input, init = {}) => {
  const method = init.method || 'GET';
  const target = new URL(typeof input === 'string' ? input : input.url);
  const body = typeof init.body === 'string' ? JSON.parse(init.body) : null;
  const extensions = method === 'GET'
    ? JSON.parse(target.searchParams.get('extensions') || 'null')
    : body && body.extensions;
  const hasQuery = method === 'GET' ? target.searchParams.has('query') : Boolean(body && body.query);
  const call = { method, hasQuery, persisted: Boolean(extensions && extensions.persistedQuery) };
  return fetch(input, init).then((response) => {
    requests.push({ ...call, status: response.status });
    return response;
  });
};

const PRODUCTS = gql(`
  query Catalogue_${tag}($first: Int!) {
    products(first: $first) { edges { node { id name price { amount currency } } } }
  }
`);
const REGISTER = gql(`
  mutation Register_${tag}($input: RegisterInput!) {
    register(input: $input) { accessToken user { id } errors { code message } }
  }
`);
const ME = gql(`query Me_${tag} { me { id } }`);

function summary(result) {
  return {
    data: result.data ?? null,
    error: result.error ? result.error.message : null,
  };
}

const plain = new Client({ url, exchanges: [cacheExchange, fetchExchange], fetch: recordingFetch });
const query = summary(await plain.query(PRODUCTS, { first: 5 }).toPromise());
const queryRequests = requests.splice(0);
const mutation = summary(await plain.mutation(REGISTER, {
  input: { email, password: 'correct horse battery', name: 'urql' },
}).toPromise());
const mutationRequests = requests.splice(0);

// The README's authenticated client: the access token in every request's headers.
const token = mutation.data ? mutation.data.register.accessToken : null;
const signedIn = new Client({
  url,
  exchanges: [cacheExchange, fetchExchange],
  fetch: recordingFetch,
  fetchOptions: () => (token ? { headers: { Authorization: `Bearer ${token}` } } : {}),
});
const me = summary(await signedIn.query(ME, {}).toPromise());
const meRequests = requests.splice(0);

// The README's client: persisted queries, and the token in `fetchOptions`.
const persisted = new Client({
  url,
  exchanges: [cacheExchange, persistedExchange(), fetchExchange],
  fetchOptions: () => (token ? { headers: { Authorization: `Bearer ${token}` } } : {}),
  fetch: recordingFetch,
  requestPolicy: 'network-only',
});
const first = summary(await persisted.query(PRODUCTS, { first: 3 }).toPromise());
const firstRequests = requests.splice(0);
const again = summary(await persisted.query(PRODUCTS, { first: 3 }).toPromise());
const againRequests = requests.splice(0);

console.log(JSON.stringify({
  query, queryRequests, mutation, mutationRequests, me, meRequests,
  persisted: { first, firstRequests, again, againRequests },
}));
