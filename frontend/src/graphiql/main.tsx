// GraphiQL, bundled: the page and every asset come from the gateway, so it works offline and
// under a Content-Security-Policy of 'self'. Queries and mutations go over HTTP to the page's
// own URL; subscriptions over WebSocket (graphql-transport-ws) to the same path.
import { createGraphiQLFetcher } from "@graphiql/toolkit";
import { GraphiQL } from "graphiql";
import "graphiql/setup-workers/vite"; // Monaco's editor, JSON and GraphQL workers, bundled
import "graphiql/style.css";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import "./page.css";

const DEFAULT_QUERY = `# billing-gateway
#
# Workspace fields need an API key. Under
# "Headers" below, set:
#
#   {"Authorization": "Bearer <key>"}
#
# \`billing-gateway serve --demo\` prints one.
# Subscriptions run over WebSocket on this
# same URL and send that header as their
# connection_init payload.
#
# Run with Ctrl-Enter.

{
  plans {
    code
    name
  }
}
`;

// The endpoint is the page's own URL: it works behind a proxy that mounts the gateway on a path.
const url = window.location.href.split(/[?#]/)[0];
const subscriptionUrl = url.replace(/^http/, "ws");

const fetcher = createGraphiQLFetcher({
  url,
  subscriptionUrl,
  // The gateway answers single responses only: no multipart/mixed (incremental delivery).
  enableIncrementalDelivery: false,
});

const container = document.getElementById("graphiql");
if (container === null) {
  throw new Error("the page has no #graphiql element");
}
createRoot(container).render(
  <StrictMode>
    <GraphiQL
      fetcher={fetcher}
      defaultQuery={DEFAULT_QUERY}
      defaultEditorToolsVisibility="headers"
      isHeadersEditorEnabled
      // An API key is a secret: headers stay in memory unless the user turns persistence on.
      shouldPersistHeaders={false}
      showPersistHeadersSettings
      inputValueDeprecation
    />
  </StrictMode>,
);
