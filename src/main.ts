#!/usr/bin/env node
// Composition root and CLI: load config, pick the source (a remote Mastra server when MASTRA_URL is set, else the
// embedded demo Mastra in process), start the bridge, listen, and shut down cleanly on SIGTERM/SIGINT.

import { parseArgs } from 'node:util';
import pino from 'pino';
import { type BridgeHandle, startBridge } from './bridge.js';
import { type BridgeConfig, ConfigError, DEFAULT_CONFIG_FILE, ENV_VARS, loadConfig, sourceServers } from './config.js';
import { loadEmbeddedDemo } from './embedded-demo.js';
import { VERSION } from './version.js';

const HELP = `mastra-task-bridge ${VERSION}
Makes Mastra background tasks observable: OTLP spans and Prometheus metrics.

Usage: mastra-task-bridge [--config FILE] [--check-config]

Options:
  -c, --config FILE   YAML configuration (default: ${DEFAULT_CONFIG_FILE} when present)
      --check-config  validate the configuration, print it, and exit
  -h, --help          this help
  -v, --version       print the version

Environment (overrides the file):
${ENV_VARS.map((v) => `  ${v.name.padEnd(36)}${v.description}`).join('\n')}

With no MASTRA_URL, a source checkout (npm start) runs an embedded demo Mastra app in process;
an installed package needs MASTRA_URL.`;

async function main(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        config: { type: 'string', short: 'c' },
        'check-config': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
      strict: true,
    }).values;
  } catch (e) {
    process.stderr.write(`mastra-task-bridge: ${(e as Error).message}\nTry --help.\n`);
    return 1;
  }
  if (args.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (args.version) {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  let config: BridgeConfig;
  try {
    config = loadConfig(args.config !== undefined ? { file: args.config } : {});
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`mastra-task-bridge: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  if (args['check-config']) {
    const shown = {
      ...config,
      source: { ...config.source, token: config.source.token ? '<set>' : '' },
      api: { ...config.api, tokens: config.api.tokens.map(() => '<set>'), metricsToken: config.api.metricsToken ? '<set>' : '' },
    };
    process.stdout.write(`${JSON.stringify(shown, null, 2)}\n`);
    return 0;
  }

  const logger = pino({ level: config.log.level, name: 'mastra-task-bridge' });
  let bridge: BridgeHandle;
  let stopWorkload: () => Promise<void> = async () => {};
  let stopMastra: () => Promise<void> = async () => {};
  // startBridge throws only on what the operator must fix (an unreadable or foreign checkpoint file, a checkpoint
  // directory that cannot be written): one clear line and exit 1, not a stack trace.
  const start = (options: Parameters<typeof startBridge>[0]): BridgeHandle | undefined => {
    try {
      return startBridge(options);
    } catch (e) {
      process.stderr.write(`mastra-task-bridge: cannot start: ${(e as Error).message}\n`);
      return undefined;
    }
  };
  if (sourceServers(config).length > 0) {
    const started = start({ config, logger, mode: 'remote' });
    if (!started) return 1;
    bridge = started;
  } else {
    // Loaded only here: watching a remote server needs no Mastra installed, and demo/ is not in the published package.
    const loaded = await loadEmbeddedDemo();
    if ('error' in loaded) {
      process.stderr.write(`mastra-task-bridge: ${loaded.error}`);
      return 1;
    }
    const demo = loaded.createEmbeddedDemo();
    logger.warn(
      { ratePerSecond: config.demo.ratePerSecond },
      'DEMO MODE: no MASTRA_URL set; running an embedded demo Mastra app in process (mock model, no network). Set MASTRA_URL to watch a real Mastra server.',
    );
    const started = start({ mastra: demo.mastra, config, logger, mode: 'demo' });
    if (!started) {
      await demo.shutdown().catch(() => undefined);
      return 1;
    }
    bridge = started;
    // demo.ratePerSecond 0: the demo Mastra runs, nothing starts tasks (the board and /metrics stay quiet).
    if (config.demo.ratePerSecond > 0) {
      const workload = demo.startWorkload({
        ratePerSecond: config.demo.ratePerSecond,
        onError: (err) => logger.debug({ err }, 'demo scenario error'),
      });
      stopWorkload = () => workload.stop();
    }
    stopMastra = () => demo.shutdown().catch(() => undefined);
  }

  try {
    const address = await bridge.app.listen({ host: config.http.host, port: config.http.port });
    logger.info({ address, metrics: `${address}/metrics` }, 'mastra-task-bridge listening');
  } catch (e) {
    logger.fatal({ err: e }, `cannot listen on ${config.http.host}:${config.http.port}`);
    await bridge.close();
    return 1;
  }

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down: stopping the source, flushing spans');
      (async () => {
        await stopWorkload();
        await bridge.close();
        await stopMastra();
        logger.info('stopped');
        resolve(0);
      })().catch((err) => {
        logger.error({ err }, 'error during shutdown');
        resolve(1);
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    // Let pino flush, then exit even if a library left a handle open.
    setImmediate(() => process.exit(code));
  },
  (error) => {
    process.stderr.write(`mastra-task-bridge: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
