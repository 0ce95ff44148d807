// Multinomial logistic regression (softmax(x W + b)) by minibatch SGD, in plain JavaScript, as a
// defineTrainer: the model of federation-logreg.json (imported by the coordinator and every learner).
import { defineTrainer } from 'smart-whale-core';

const FEATURES = 784;
const CLASSES = 10;

function probabilities(w, x, n) {
  const p = new Float64Array(n * CLASSES);
  for (let i = 0; i < n; i++) {
    const row = p.subarray(i * CLASSES, (i + 1) * CLASSES);
    row.set(w.b);
    for (let j = 0; j < FEATURES; j++) {
      const v = x[i * FEATURES + j];
      if (v !== 0) for (let k = 0; k < CLASSES; k++) row[k] += v * w.W[j * CLASSES + k];
    }
    const max = Math.max(...row);
    let sum = 0;
    for (let k = 0; k < CLASSES; k++) sum += row[k] = Math.exp(row[k] - max);
    for (let k = 0; k < CLASSES; k++) row[k] /= sum;
  }
  return p;
}

export default defineTrainer({
  init: () => ({
    W: { shape: [FEATURES, CLASSES], data: new Float32Array(FEATURES * CLASSES) },
    b: { shape: [CLASSES], data: new Float32Array(CLASSES) },
  }),
  fit(w, dataset, o) {
    let loss = 0;
    for (let e = 0; e < o.epochs; e++) {
      loss = 0;
      for (const batch of dataset.batches(o.batchSize, { seed: (o.seed ?? 1) + e })) {
        const x = batch.x.data;
        const y = batch.y.data;
        const n = y.length;
        const p = probabilities(w, x, n);
        for (let i = 0; i < n; i++) {
          loss -= Math.log(Math.max(p[i * CLASSES + y[i]], 1e-12));
          p[i * CLASSES + y[i]] -= 1; // the gradient of the loss by the logits: p - onehot(y)
        }
        const step = o.learningRate / n;
        for (let i = 0; i < n; i++) {
          for (let j = 0; j < FEATURES; j++) {
            const v = x[i * FEATURES + j];
            if (v !== 0) for (let k = 0; k < CLASSES; k++) w.W[j * CLASSES + k] -= step * v * p[i * CLASSES + k];
          }
          for (let k = 0; k < CLASSES; k++) w.b[k] -= step * p[i * CLASSES + k];
        }
      }
    }
    return { weights: w, metrics: { loss: loss / Math.max(1, dataset.size) } };
  },
  evaluate(w, dataset) {
    let correct = 0;
    let loss = 0;
    for (const batch of dataset.batches(1000, { shuffle: false })) {
      const y = batch.y.data;
      const p = probabilities(w, batch.x.data, y.length);
      for (let i = 0; i < y.length; i++) {
        const row = p.subarray(i * CLASSES, (i + 1) * CLASSES);
        if (row.indexOf(Math.max(...row)) === y[i]) correct++;
        loss -= Math.log(Math.max(row[y[i]], 1e-12));
      }
    }
    return { accuracy: correct / Math.max(1, dataset.size), loss: loss / Math.max(1, dataset.size) };
  },
});
