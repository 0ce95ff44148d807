/** Federation topic names, read from the AsyncAPI document like every other topic. */
import { WhaleError } from '../../../common/errors.js';
import { TOPICS } from '../../../transport/topics.js';

function topic(channel: string): string {
  const address = (TOPICS as Readonly<Record<string, string>>)[channel];
  if (!address)
    throw new WhaleError('ERR_CONFIG', `asyncapi.json: channel '${channel}' is missing (src/transport/asyncapi.json)`, {
      field: channel,
    });
  return address;
}

export const FEDERATION_TOPICS = Object.freeze({
  clients: topic('federationClients'),
  rounds: topic('federationRounds'),
  updates: topic('federationUpdates'),
  events: TOPICS.events,
  metrics: TOPICS.metrics,
});
