// Apollo Client 4 against a live server, set up as README.md shows it:
// `node apollo.mjs http://127.0.0.1:PORT/graphql EMAIL [TAG]`
// (TAG names the operations, so each run's documents and hashes are new).
// A plain HttpLink client (behind the README's SetContextLink) runs a query, a mutation, and
// `me` with the access token the mutation returned; a second client puts
// PersistedQueryLink (SHA-256 from Web Crypto, as in a browser; hashed queries over GET) in
// front of the HttpLink and runs the same query twice. The fetch passed in only records each request.
// Prints one JSON object on stdout.
import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { SetContextLink } from '@apollo/client/link/context';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';

const [url, email, tag = 'run'] = process.argv.slice(2);
if (!url || !email) {
  console.error('usage: node apollo.mjs URL EMAIL [TAG]');
  process.exit(2);
}

const requests = [];
const recordingFetch = async (input, init = {}) => {
  const method = init.method || 'GET';
  const target = new URL(typeof input === 'string' ? input : input.url);
  const body = typeof init.body === 'string' ? JSON.parse(init.body) : null;
  const extensions = method === 'GET'
    ? JSON.parse(target.searchParams.get('extensions') || 'null')
    : body && body.extensions;
  const hasQuery = method === 'GET' ? target.searchParams.has('query') : Boolean(body && body.query);
  const response = await fetch(input, init);
  requests.push({
    method, hasQuery, persisted: Boolean(extensions && extensions.persistedQuery),
    status: response.status,
  });
  return response;
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
  return { data: result.data ?? null, error: result.error ? result.error.message : null };
}

async function attempt(run) {
  try {
    return summary(await run());
  } catch (error) {
    return { data: null, error: String(error && error.message ? error.message : error) };
  }
}

let token = null;
// The README's authentication link: the access token, once there is one, in every request.
const auth = new SetContextLink(({ headers }) => ({
  headers: token ? { ...headers, Authorization: `Bearer ${token}` } : headers,
}));
const plain = new ApolloClient({
  link: auth.concat(new HttpLink({ uri: url, fetch: recordingFetch })),
  cache: new InMemoryCache(),
});
const query = await attempt(() => plain.query({ query: PRODUCTS, variables: { first: 5 } }));
const queryRequests = requests.splice(0);
const mutation = await attempt(() => plain.mutate({
  mutation: REGISTER,
  variables: { input: { email, password: 'correct horse battery', name: 'Apollo' } },
}));
const mutationRequests = requests.splice(0);
token = mutation.data ? mutation.data.register.accessToken : null;
const me = await attempt(() => plain.query({ query: ME, fetchPolicy: 'network-only' }));
const meRequests = requests.splice(0);

// The README's sha256, word for word: Web Crypto exists in browsers and in Node 20.
const sha256 = async (text) => {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
};
// The README's chain: authentication, then persisted queries, then HTTP (the token is set now).
const persisted = new ApolloClient({
  link: auth
    .concat(new PersistedQueryLink({ sha256, useGETForHashedQueries: true }))
    .concat(new HttpLink({ uri: url, fetch: recordingFetch })),
  cache: new InMemoryCache(),
  defaultOptions: { query: { fetchPolicy: 'network-only' } },
});
const first = await attempt(() => persisted.query({ query: PRODUCTS, variables: { first: 3 } }));
const firstRequests = requests.splice(0);
const again = await attempt(() => persisted.query({ query: PRODUCTS, variables: { first: 3 } }));
const againRequests = requests.splice(0);

console.log(JSON.stringify({
  query, queryRequests, mutation, mutationRequests, me, meRequests,
  persisted: { first, firstRequests, again, againRequests },
}));
