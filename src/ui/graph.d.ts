// Types of graph.js (plain JavaScript, served to the browser as is) for the tests.
export interface GraphNode {
  id: string;
  kind: string;
  label: string;
  step?: string;
  type?: string;
  foreach?: string;
  workflow?: string;
}
export interface GraphEdge {
  from: string;
  to: string;
  label?: string;
  back?: boolean;
}
export interface StepState {
  phase: string;
  total: number;
  phases: Record<string, number>;
}
export function definitionGraph(definition: unknown): { nodes: GraphNode[]; edges: GraphEdge[] };
export function stepStates(instances: { step: string; phase: string }[] | undefined): Map<string, StepState>;
export function countsText(state: StepState | undefined): string;
export function safeUrl(url: unknown): string | undefined;
