/**
 * Calls the gateway's admin services the way an operator's script would:
 * Connect's JSON protocol over plain HTTP (POST /<service>/<method>).
 */
export interface AdminResult<T = Record<string, unknown>> {
  status: number;
  body: T;
}

export async function adminCall<T = Record<string, unknown>>(baseUrl: string, adminKey: string | undefined, method: string, body: object = {}): Promise<AdminResult<T>> {
  const res = await fetch(`${baseUrl}/switchyard.v1.${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(adminKey === undefined ? {} : { authorization: `Bearer ${adminKey}` }) },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as T };
}

/** Like adminCall, but fails the test on anything but 200. */
export async function admin<T = Record<string, unknown>>(baseUrl: string, adminKey: string, method: string, body: object = {}): Promise<T> {
  const r = await adminCall<T>(baseUrl, adminKey, method, body);
  if (r.status !== 200) throw new Error(`${method}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

export interface CreatedKey {
  key: { id: string; hint: string; name: string };
  secret: string;
}

/** One chat call over the REST bridge with a key; returns status, headers and JSON body. */
export async function chat(baseUrl: string, key: string | undefined, body: object = {}, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; body: any }> {
  const res = await fetch(`${baseUrl}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(key === undefined ? {} : { authorization: `Bearer ${key}` }), ...headers },
    body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }], max_tokens: 2, ...body }),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, headers: res.headers, body: json };
}
