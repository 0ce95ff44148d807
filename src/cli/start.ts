import type { CliIO } from './main.js';

/** Runs the messaging services until SIGINT/SIGTERM (KAFKA_BROKERS / REDIS_URL select real backends). */
export async function startCommand(io: CliIO, signal?: AbortSignal): Promise<number> {
  const { messagingService } = await import('../services/messaging-service.js');
  const { TOPICS } = await import('../transport/topics.js');
  await messagingService.initialize();
  io.out(
    `smart-whale: services running on the ${messagingService.bus.kind === 'kafka' ? 'Kafka' : 'in-process'} bus as node ` +
      `'${messagingService.nodeId}' (${Object.keys(TOPICS).length} topics); Ctrl-C to stop\n`,
  );
  await messagingService.run(signal);
  io.out('smart-whale: stopped\n');
  return 0;
}
