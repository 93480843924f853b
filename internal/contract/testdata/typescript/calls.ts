// Calls a client developer writes against the TypeScript client that openapi-typescript
// generates from openapi.yaml in its DEFAULT settings (build/api.d.ts), with openapi-fetch.
// internal/contract type-checks this file with tsc; it is never run.
import createClient from "openapi-fetch";
import type { paths, components } from "./build/api";

const client = createClient<paths>({ baseUrl: "http://127.0.0.1:8080/api/v1" });

export async function signUpCreateProfileCreateRoomUpload(photo: Blob): Promise<number> {
  // Sign-up with only the required fields, plus an optional first profile given by name only.
  const signUp = await client.POST("/account/signup", {
    body: { id: "jane_doe", nickname: "Jane", email: "jane@example.com", password: "correct horse 42", profile: { name: "Jane Doe" } },
  });
  if (signUp.error) {
    const problem: components["schemas"]["Problem"] = signUp.error;
    throw new Error(problem.code);
  }
  let token = "";
  if (signUp.response.status === 201 && "access_token" in signUp.data) {
    token = signUp.data.access_token;
  }
  const auth = { Authorization: `Bearer ${token}` };

  // A second profile: `private`, `can_anonymous_invite` and `is_follow_list_public` may be left out.
  const profile = await client.POST("/profiles", { body: { name: "Jane at work" }, headers: auth });
  if (!profile.data) throw new Error(profile.error.code);
  const profileId: number = profile.data.id;
  const version: number = profile.data.version;

  // A room as that profile; `name`, `description` and `private` may be left out.
  const room = await client.POST("/chats", {
    params: { header: { "X-Profile-Id": profileId } },
    body: { invite_profile_ids: [42] },
    headers: auth,
  });
  if (!room.data) throw new Error(room.error.code);
  const roomId: number = room.data.room.id;

  // An upload: the binary part is typed as it is generated; the body goes out as FormData.
  const upload = await client.POST("/files", {
    body: { file: photo as unknown as string },
    bodySerializer(body) {
      const form = new FormData();
      form.append("file", body.file as unknown as Blob);
      return form;
    },
    headers: auth,
  });
  if (!upload.data) throw new Error(upload.error.code);
  const fileId: number = upload.data.id;

  // A list page: every list has `items`.
  const rooms = await client.GET("/chats", { params: { header: { "X-Profile-Id": profileId }, query: { limit: 20 } }, headers: auth });
  const count = rooms.data ? rooms.data.items.length : 0;

  return profileId + version + roomId + fileId + count;
}
