export { WhaleServer, type WhaleServerOptions, type ServerExtension } from './whale-server.js';
export { InferenceHttpServer, type HttpServerOptions, type HttpRouteHandler } from './http-server.js';
export { generateRoutes, type GenerateRoutesOptions } from './v2-generate.js';
export { BusInferenceEndpoint, INFERENCE_GROUP, isInferenceRequest, type InferenceAnswer } from './bus-endpoint.js';
export {
  parseInferRequest,
  toNamedTensors,
  fromNamedTensors,
  type V2InferRequest,
  type V2Tensor,
} from './v2-tensors.js';
