/** Minibatch SGD for TfjsTrainer with an optional FedProx proximal term mu/2 ||w - w_start||², anchored at the received model. */
import type { Tf } from './tfjs-backend.js';

type LayersModel = import('@tensorflow/tfjs').LayersModel;
export type ProxSgd = import('@tensorflow/tfjs').SGDOptimizer & { disposeAnchors(): void };

/** SGD whose gradients get mu (w - w_start) added (mu = 0: plain SGD). */
export function proxSgd(tf: Tf, lr: number, mu: number, model: LayersModel): ProxSgd {
  const anchors = new Map<string, import('@tensorflow/tfjs').Tensor>();
  if (mu > 0) for (const w of model.trainableWeights) anchors.set(w.name, w.read().clone());
  class Prox extends tf.SGDOptimizer {
    override applyGradients(grads: Parameters<import('@tensorflow/tfjs').SGDOptimizer['applyGradients']>[0]): void {
      if (mu === 0) return super.applyGradients(grads);
      const vars = tf.engine().registeredVariables;
      const named = Array.isArray(grads) ? grads : Object.entries(grads).map(([name, tensor]) => ({ name, tensor }));
      const adjusted = tf.tidy(() =>
        named.map(({ name, tensor }) => {
          const anchor = anchors.get(name);
          const v = vars[name];
          return { name, tensor: anchor && v ? tensor.add(v.sub(anchor).mul(mu)) : tensor.clone() };
        }),
      );
      super.applyGradients(adjusted);
      adjusted.forEach((g) => g.tensor.dispose());
    }
    disposeAnchors(): void {
      anchors.forEach((t) => t.dispose());
      anchors.clear();
    }
  }
  return new Prox(lr);
}
