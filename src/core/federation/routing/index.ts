export {
  RouteOptimizer,
  type BanditOptions,
  type DecisionReason,
  type RewardWeights,
  type RouteArm,
  type RouteDecision,
  type RouteOptimizerOptions,
  type TaskRouting,
} from './route-optimizer.js';
export { RequestDispatcher, type RequestDispatcherOptions } from './request-dispatcher.js';
export { featurize, featureDim, type RouteContext } from './features.js';
export { LinearArm } from './linear-arm.js';
export {
  FEEDBACK_TOPIC,
  FEEDBACK_MESSAGE,
  FEEDBACK_GROUP,
  publishFeedback,
  subscribeFeedback,
} from './feedback-topic.js';
export {
  loadRoutingConfig,
  parseRoutingConfig,
  ROUTING_FILE,
  ROUTING_SCHEMA,
  type ArmConfig,
  type RoutingConfig,
} from './routing-config.js';
