// Apollo Client 4 against a server in trusted-documents mode, set up as README.md shows it:
// `node apollo-trusted.mjs http://127.0.0.1:PORT/graphql MANIFEST TAG`.
// MANIFEST is an Apollo persisted-query manifest that lists `query Catalogue_TAG`; the client
// sends that operation's id from the manifest and never its text. Then the client asks for an
// operation the manifest does not list, and a plain fetch sends a document as text: both must
// be refused. Prints one JSON object on stdout.
import { readFile } from 'node:fs/promises';
import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { generatePersistedQueryIdsFromManifest } from '@apollo/persisted-query-lists';

const [url, manifestPath, tag] = process.argv.slice(2);
if (!url || !manifestPath || !tag) {
  console.error('usage: node apollo-trusted.mjs URL MANIFEST TAG');
  process.exit(2);
}

const requests = [];
const recordingFetch = async (input, init = {}) => {
  const method = init.method || 'GET';
  const target = new URL(typeof input === 'string' ? input : input.url);
  const body = typeof init.body === 'string' ? JSON.parse(init.body) : null;
  const hasQuery = method === 'GET' ? target.searchParams.has('query') : Boolean(body && body.query);
  const response = await fetch(input, init);
  requests.push({ method, hasQuery, status: response.status });
  return response;
};

// In a bundled SPA: `loadManifest: () => import("./persisted-query-manifest.json")`.
const persisted = new PersistedQueryLink({
  ...generatePersistedQueryIdsFromManifest({
    loadManifest: async () => JSON.parse(await readFile(manifestPath, 'utf8')),
  }),
  useGETForHashedQueries: true,
});
const client = new ApolloClient({
  link: persisted.concat(new HttpLink({ uri: url, fetch: recordingFetch })),
  cache: new InMemoryCache(),
});

async function attempt(run) {
  try {
    const result = await run();
    return { data: result.data ?? null, error: result.error ? result.error.message : null };
  } catch (error) {
    return { data: null, error: String(error && error.message ? error.message : error) };
  }
}

const listed = await attempt(() => client.query({
  query: gql(`query Catalogue_${tag} { products(first: 5) { edges { node { id name } } } }`),
}));
const listedRequests = requests.splice(0);
const unlisted = await attempt(() => client.query({
  query: gql(`query Unlisted_${tag} { products(first: 1) { edges { cursor } } }`),
}));
const unlistedRequests = requests.splice(0);
const asText = await fetch(url, {
  method: 'POST',
  headers: { 'content-type': 'application/json', accept: 'application/json' },
  body: JSON.stringify({ query: `query Text_${tag} { products(first: 1) { edges { cursor } } }` }),
});

console.log(JSON.stringify({
  listed, listedRequests, unlisted, unlistedRequests,
  asText: { status: asText.status, body: await asText.json() },
}));
