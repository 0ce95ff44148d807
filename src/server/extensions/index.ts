export { MonitoringExtension, DEFAULT_ALERT_RULES, type MonitoringOptions } from './monitoring.js';
export { QualityRoutingExtension, qualityRoutingExtension, type QualityRoutingParts } from './routing.js';
export { qualityRoutes, type QualityRoutesContext } from './routing-routes.js';
export { KnowledgeExtension, knowledgeExtension, type KnowledgeExtensionOptions } from './knowledge.js';
export { ResourceExtension, resourceExtension, type ResourceExtensionOptions } from './resources.js';
