// The page's only way to the gateway: GraphQL over HTTP (POST /graphql) and graphql-transport-ws
// for live updates, both with the workspace's API key. Nothing here knows a screen.
import { createClient, type Client } from "graphql-ws";

const KEY_STORAGE = "billing-gateway.api-key";

/** The API key: from the URL's fragment (#key=..., never sent to a server), else this tab's storage. */
export function apiKey(): string | null {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("key");
  if (fromHash) {
    sessionStorage.setItem(KEY_STORAGE, fromHash);
    history.replaceState(null, "", location.pathname + location.search); // out of the address bar
    return fromHash;
  }
  return sessionStorage.getItem(KEY_STORAGE);
}

export function rememberKey(key: string): void {
  sessionStorage.setItem(KEY_STORAGE, key);
}

export function forgetKey(): void {
  sessionStorage.removeItem(KEY_STORAGE);
}

export class GraphQLRequestError extends Error {}

type Variables = Record<string, unknown>;

/** Run one operation; resolves with ``data``. Typed failures (unions) come back as data; only
 * transport and GraphQL errors reject. */
export async function request<T = any>(
  key: string,
  document: string,
  variables: Variables = {},
  operationName?: string,
): Promise<T> {
  const response = await fetch("/graphql", {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      Accept: "application/graphql-response+json, application/json",
      Authorization: `Bearer ${key}`,
    },
    body: JSON.stringify({ query: document, variables, operationName }),
  });
  let body: any;
  try {
    body = await response.json();
  } catch {
    throw new GraphQLRequestError(`The gateway answered ${response.status} without JSON.`);
  }
  if (body.errors?.length) {
    throw new GraphQLRequestError(body.errors.map((e: { message: string }) => e.message).join("; "));
  }
  return body.data as T;
}

let live: Client | null = null;

/** Call ``onEvent`` for every plan change of the workspace, from now on; returns a stop function. */
export function subscribe(key: string, document: string, onEvent: (event: any) => void): () => void {
  live?.dispose();
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`;
  live = createClient({ url, connectionParams: { authorization: `Bearer ${key}` }, lazy: false, retryAttempts: 5 });
  return live.subscribe(
    { query: document },
    {
      next: (result) => result.data && onEvent(Object.values(result.data)[0]),
      error: () => undefined, // retried by the client; the page keeps working without live updates
      complete: () => undefined,
    },
  );
}
