// How Miniflare runs the built teamkeys worker: the one definition shared by the end-to-end
// harness and the benchmarks, kept in step with wrangler.toml (compatibility, bindings, classes).
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * Miniflare worker options for build/index.js in front of the upstream at `upstreamUrl`.
 * `assets: true` adds the console's assets as wrangler.toml's [assets] does (the worker first for
 * every path). It is opt-in: under Miniflare the assets router sits in front of the worker, and a
 * refusal answered before the request body is read (405, 413, …) then breaks the client's
 * keep-alive connection for its next request, which the gateway's own tests (and the benchmarks)
 * must not measure.
 */
export function gatewayWorkerOptions({ upstreamUrl, upstreamSecret, bindings = {}, assets = false }) {
  return {
    scriptPath: 'build/index.js',
    modules: true,
    modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }],
    compatibilityDate: '2026-04-26',
    compatibilityFlags: ['enable_request_signal'],
    kvNamespaces: ['KEYS'],
    durableObjects: {
      LEDGER: { className: 'KeyLedger', useSQLite: true },
      BUDGET: { className: 'BudgetLedger', useSQLite: true },
      OUTBOX: { className: 'Outbox', useSQLite: true },
      REGISTRY: { className: 'Registry', useSQLite: true },
      PLATFORM: { className: 'Platform', useSQLite: true },
      SIGNIN_GUARD: { className: 'SignInGuard', useSQLite: true },
    },
    ...(assets && {
      // [assets] in wrangler.toml: the worker first for every path, the console under build/assets.
      assets: {
        directory: 'build/assets',
        binding: 'ASSETS',
        routerConfig: { has_user_worker: true, invoke_user_worker_ahead_of_assets: true },
      },
    }),
    bindings: { UPSTREAM_URL: upstreamUrl, UPSTREAM_API_KEY: upstreamSecret, ...bindings },
  };
}

/**
 * Miniflare worker options for the gateway alone (build/gateway/index.js, wrangler.gateway.toml):
 * the key ledgers' class bound from the worker named `ledgersWorker`, the same KV namespace
 * (`kvId`) as that worker's.
 */
export function gatewayAloneWorkerOptions({ upstreamUrl, upstreamSecret, ledgersWorker, kvId, bindings = {} }) {
  return {
    name: 'teamkeys-gateway',
    scriptPath: 'build/gateway/index.js',
    modules: true,
    modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }],
    compatibilityDate: '2026-04-26',
    compatibilityFlags: ['enable_request_signal'],
    kvNamespaces: { KEYS: kvId },
    durableObjects: { LEDGER: { className: 'KeyLedger', scriptName: ledgersWorker, useSQLite: true } },
    bindings: { UPSTREAM_URL: upstreamUrl, UPSTREAM_API_KEY: upstreamSecret, ...bindings },
  };
}
