// Reads the Grafana dashboards (grafana/dashboards/*.json): every query target with its panel, the template
// variables, and Grafana-style variable substitution, so tests can run each panel's PromQL against a real Prometheus.
import { readDashboards } from './dashboard-types.js';

export interface PanelQuery {
  dashboard: string;
  panel: string;
  refId: string;
  expr: string;
  instant: boolean;
  exemplar: boolean;
}

interface RawPanel {
  type: string;
  title?: string;
  panels?: RawPanel[];
  targets?: { refId: string; expr: string; instant?: boolean; exemplar?: boolean }[];
}

export interface DashboardVariable {
  dashboard: string;
  name: string;
  type: string;
  query: string;
  allValue?: string;
}

export function panelQueries(): PanelQuery[] {
  return readDashboards().flatMap(({ json }) => {
    const panels = (json.panels ?? []) as RawPanel[];
    return panels
      .flatMap((p) => [p, ...(p.panels ?? [])])
      .flatMap((p) =>
        (p.targets ?? []).map((t) => ({
          dashboard: json.uid,
          panel: p.title ?? '',
          refId: t.refId,
          expr: t.expr,
          instant: t.instant === true,
          exemplar: t.exemplar === true,
        })),
      );
  });
}

export function dashboardVariables(): DashboardVariable[] {
  return readDashboards().flatMap(({ json }) => {
    const list = (json as { templating?: { list?: { name: string; type: string; query: unknown; allValue?: string }[] } }).templating?.list ?? [];
    return list.map((v) => ({
      dashboard: json.uid,
      name: v.name,
      type: v.type,
      query: typeof v.query === 'string' ? v.query : String((v.query as { query?: string }).query ?? ''),
      ...(v.allValue !== undefined ? { allValue: v.allValue } : {}),
    }));
  });
}

/** Replaces $name and ${name} like Grafana; an unknown variable throws, so a new variable cannot go untested. */
export function substitute(expr: string, values: Record<string, string>): string {
  return expr.replace(/\$\{(\w+)\}|\$(\w+)/g, (_m, a: string | undefined, b: string | undefined) => {
    const name = (a ?? b)!;
    const value = values[name];
    if (value === undefined) throw new Error(`no value for variable $${name} in: ${expr}`);
    return value;
  });
}
