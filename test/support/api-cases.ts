// Test support: the malformed task-API requests every proxy test runs (in process and over HTTP). Each must answer
// 400 with a JSON error whose message names the field (`querystring/<field>` or `params/<field>`).

export interface MalformedCase {
  url: string;
  /** The field the message must name. */
  field: string;
  /** A word of the reason the message must contain. */
  reason: RegExp;
}

const long = 'x'.repeat(300);

export const MALFORMED: MalformedCase[] = [
  { url: '/api/tasks?status=bogus', field: 'querystring/status', reason: /one of: pending, running/ },
  { url: '/api/tasks?status=running,bogus', field: 'querystring/status', reason: /one of/ },
  { url: '/api/tasks?status=', field: 'querystring/status', reason: /one of/ },
  { url: '/api/tasks?status=RUNNING', field: 'querystring/status', reason: /one of/ },
  { url: '/api/tasks?page=-1', field: 'querystring/page', reason: />= 0/ },
  { url: '/api/tasks?page=abc', field: 'querystring/page', reason: /integer/ },
  { url: '/api/tasks?page=1.5', field: 'querystring/page', reason: /integer/ },
  { url: '/api/tasks?page=100000000', field: 'querystring/page', reason: /<= 100000/ },
  { url: '/api/tasks?perPage=0', field: 'querystring/perPage', reason: />= 1/ },
  { url: '/api/tasks?perPage=-5', field: 'querystring/perPage', reason: />= 1/ },
  { url: '/api/tasks?perPage=ten', field: 'querystring/perPage', reason: /integer/ },
  { url: '/api/tasks?orderBy=name', field: 'querystring/orderBy', reason: /one of: createdAt/ },
  { url: '/api/tasks?orderDirection=up', field: 'querystring/orderDirection', reason: /one of: asc, desc/ },
  { url: '/api/tasks?dateFilterBy=updatedAt', field: 'querystring/dateFilterBy', reason: /one of/ },
  { url: '/api/tasks?fromDate=yesterday', field: 'querystring/fromDate', reason: /date-time/ },
  { url: '/api/tasks?toDate=2024-13-45T00:00:00Z', field: 'querystring/toDate', reason: /date-time/ },
  { url: '/api/tasks?fromDate=2024-01-01', field: 'querystring/fromDate', reason: /date-time/ },
  { url: '/api/tasks?fromDate=2025-01-02T00:00:00Z&toDate=2025-01-01T00:00:00Z', field: 'querystring/toDate', reason: /before fromDate/ },
  { url: '/api/tasks?agentId=', field: 'querystring/agentId', reason: /fewer than 1/ },
  { url: `/api/tasks?threadId=${long}`, field: 'querystring/threadId', reason: /more than 256/ },
  { url: '/api/tasks?runId=a&runId=b', field: 'querystring/runId', reason: /string/ },
  { url: '/api/tasks?toolName=%00charge', field: 'querystring/toolName', reason: /not allowed/ },
  { url: '/api/tasks?resourceId=%1b%5b31m', field: 'querystring/resourceId', reason: /not allowed/ },
  { url: '/api/tasks?stauts=running', field: 'querystring/stauts', reason: /not a parameter/ },
  { url: '/api/tasks?apiKey=secret', field: 'querystring/apiKey', reason: /not a parameter/ },
  { url: '/api/tasks/a%20b', field: 'params/id', reason: /not allowed/ },
  { url: '/api/tasks/..%2Fmetrics', field: 'params/id', reason: /not allowed/ },
  { url: '/api/tasks/-rf', field: 'params/id', reason: /not allowed/ },
  { url: '/api/tasks/%E2%9C%93', field: 'params/id', reason: /not allowed/ },
];
