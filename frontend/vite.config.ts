// One Vite build for every page the gateway serves. Each page is an HTML file in this folder,
// listed in PAGES; the build writes it, with its hashed assets under assets/, into the Python
// package (gateway/static), which is committed: the gateway serves it with no npm step.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

// name -> HTML entry; gateway/static/<name>.html is what the gateway reads.
const PAGES = {
  billing: here("billing.html"),
  graphiql: here("graphiql.html"),
};

export default defineConfig({
  root: here("."),
  // Relative URLs: pages are served at top-level paths (/graphql), assets at /assets/, and a
  // proxy that mounts the gateway under a prefix keeps working.
  base: "./",
  build: {
    outDir: here("../gateway/static"),
    emptyOutDir: true,
    assetsDir: "assets",
    // Committed output: no source maps (they would double its size) and no public/ copy.
    sourcemap: false,
    copyPublicDir: false,
    // Monaco is one large chunk by nature; it loads once and is cached for a year.
    chunkSizeWarningLimit: 5000,
    rolldownOptions: {
      input: PAGES,
      onwarn(warning, warn) {
        // React libraries mark modules "use client" for server components; meaningless in a
        // client-only bundle, and one warning per module would bury real ones.
        if (warning.code === "MODULE_LEVEL_DIRECTIVE") return;
        warn(warning);
      },
    },
  },
  worker: {
    format: "es",
  },
});
