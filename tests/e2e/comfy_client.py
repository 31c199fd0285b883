"""A ComfyUI API client as ComfyUI's script_examples/websockets_api_example.py writes one: queue a
prompt on /prompt, follow /ws until it is done, read /history and fetch the images from /view."""
import json
import uuid

import websocket


class ComfyClient:
    """One client id and its WebSocket to a running service (service_support.Service)."""

    def __init__(self, service, timeout=120):
        self.service = service
        self.client_id = str(uuid.uuid4())
        self.ws = websocket.WebSocket()
        url = service.base_url.replace("http://", "ws://") + f"/ws?clientId={self.client_id}"
        self.ws.connect(url, timeout=timeout)

    def close(self):
        self.ws.close()

    def queue(self, prompt):
        """POSTs the prompt; returns the response (200 with prompt_id, or ComfyUI's 400 body)."""
        return self.service.post("/prompt", {"prompt": prompt, "client_id": self.client_id})

    def wait(self, prompt_id):
        """The JSON messages of the prompt until `executing` with node null, its last one (binary
        preview frames are skipped)."""
        received = []
        while True:
            frame = self.ws.recv()
            if not isinstance(frame, str):
                continue
            message = json.loads(frame)
            data = message.get("data", {})
            if data.get("prompt_id") == prompt_id:
                received.append(message)
            if message["type"] == "executing" and data["node"] is None and data["prompt_id"] == prompt_id:
                return received

    def history(self, prompt_id):
        return self.service.get(f"/history/{prompt_id}").json()[prompt_id]

    def images(self, prompt_id):
        """The bytes of every image the prompt's outputs list, fetched from /view."""
        found = []
        for output in self.history(prompt_id)["outputs"].values():
            for image in output.get("images", []):
                params = {k: image[k] for k in ("filename", "subfolder", "type")}
                response = self.service.get("/view", params=params)
                assert response.status_code == 200, response.text
                found.append(response.content)
        return found
