// The virtual key governed benches send with: shared by bench/run.ts and bench/cluster.ts.

/**
 * Creates a customer, a team under it and a key under the team, each with a
 * budget and rate limits far above what a bench spends, so every request is
 * authenticated, reserved and settled at three levels but never refused.
 */
export async function createBenchKey(base: string, adminKey: string): Promise<string> {
  const call = async (method: string, body: object): Promise<any> => {
    const res = await fetch(`${base}/switchyard.v1.${method}`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${adminKey}` },
      body: JSON.stringify(body),
    });
    if (res.status !== 200) throw new Error(`${method}: HTTP ${res.status} ${await res.text()}`);
    return res.json();
  };
  const budget = { limitUsd: 1_000_000, period: "PERIOD_MONTH" };
  const limits = { rpm: 10_000_000, tpm: "100000000000", maxConcurrent: 100_000 };
  const { customer } = await call("OrgService/CreateCustomer", { name: "bench", budget });
  const { team } = await call("OrgService/CreateTeam", { name: "bench", customerId: customer.id, budget, limits });
  const { secret } = await call("KeyService/CreateKey", { name: "bench", teamId: team.id, budget, limits });
  return secret as string;
}
