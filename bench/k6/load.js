// load.js: a fixed arrival rate (open model) held for a while, judged by
// latency and error objectives. k6 exits with code 99 when a threshold fails.
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e RATE=2000 -e P99_MS=10 bench/k6/load.js
// ENDPOINT picks the path (default /json); DURATION the length (default 1m).
import http from 'k6/http';

const BASE_URL = __ENV.BASE_URL || 'http://127.0.0.1:8080';
const ENDPOINT = __ENV.ENDPOINT || '/json';
const RATE = parseInt(__ENV.RATE || '1000', 10);
const P99_MS = parseFloat(__ENV.P99_MS || '10');

export const options = {
  scenarios: {
    steady: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: __ENV.DURATION || '1m',
      preAllocatedVUs: Math.max(10, Math.ceil(RATE / 100)),
      maxVUs: Math.max(100, Math.ceil(RATE / 10)),
    },
  },
  thresholds: {
    http_req_duration: [`p(99)<${P99_MS}`],
    http_req_failed: ['rate<0.001'],
    // Dropped iterations mean k6 ran out of VUs: the generator, not the
    // server, was the limit, and the run proves nothing.
    dropped_iterations: ['count==0'],
  },
  summaryTrendStats: ['min', 'med', 'p(90)', 'p(99)', 'p(99.9)', 'max'],
};

export default function () {
  http.get(`${BASE_URL}${ENDPOINT}`);
}

export function handleSummary(data) {
  return {
    stdout: JSON.stringify({
      rate: RATE,
      p99_ms: data.metrics.http_req_duration.values['p(99)'],
      failed_rate: data.metrics.http_req_failed.values.rate,
      requests: data.metrics.http_reqs.values.count,
    }) + '\n',
  };
}
