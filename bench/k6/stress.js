// stress.js: raise the arrival rate step by step to find the knee, where
// latency climbs and errors start. Read the per-stage figures in the summary
// or stream them with --out json=stress.json.
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e MAX_RATE=50000 bench/k6/stress.js
// ENDPOINT picks the path (default /json); STAGE the length of each step.
import http from 'k6/http';

const BASE_URL = __ENV.BASE_URL || 'http://127.0.0.1:8080';
const ENDPOINT = __ENV.ENDPOINT || '/json';
const MAX_RATE = parseInt(__ENV.MAX_RATE || '20000', 10);
const STAGE = __ENV.STAGE || '30s';
const STEPS = 8;

// Ramp to each of STEPS even fractions of MAX_RATE and hold it for a stage.
const stages = [];
for (let i = 1; i <= STEPS; i++) {
  const target = Math.round((MAX_RATE * i) / STEPS);
  stages.push({ target, duration: '10s' }, { target, duration: STAGE });
}

export const options = {
  scenarios: {
    ramp: {
      executor: 'ramping-arrival-rate',
      startRate: Math.round(MAX_RATE / STEPS / 2),
      timeUnit: '1s',
      preAllocatedVUs: 50,
      maxVUs: Math.max(200, Math.ceil(MAX_RATE / 10)),
      stages,
    },
  },
  thresholds: {
    // Abort once the server is clearly past its knee instead of piling on.
    http_req_failed: [{ threshold: 'rate<0.05', abortOnFail: true, delayAbortEval: '10s' }],
    http_req_duration: ['p(99)<1000'],
  },
  summaryTrendStats: ['min', 'med', 'p(90)', 'p(99)', 'p(99.9)', 'max'],
};

export default function () {
  http.get(`${BASE_URL}${ENDPOINT}`);
}
