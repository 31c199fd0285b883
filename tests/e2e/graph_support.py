"""Running ComfyUI graphs to their image through comfy_client.ComfyClient, comparing the images and
building graph variants, for the e2e tests of nodes."""
import copy
import io

import numpy as np
from PIL import Image


def pixels(png):
    """An encoded image's RGB pixels as int16, so that differences of two images do not wrap."""
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def same(a, b):
    """Whether two images' pixels are the same within 1/255."""
    return int(np.abs(a - b).max()) <= 1


def finish(client, graph):
    """Queues a graph and waits for it to end: (its prompt id, its websocket messages)."""
    response = client.queue(graph)
    assert response.status_code == 200, response.text
    prompt_id = response.json()["prompt_id"]
    return prompt_id, client.wait(prompt_id)


def single_image(client, prompt_id):
    """The pixels of the one image a finished prompt saved."""
    images = client.images(prompt_id)
    assert len(images) == 1
    return pixels(images[0])


def outcome(client, graph):
    """(image pixels, None) for a graph that runs, (None, error message) for one that fails."""
    prompt_id, messages = finish(client, graph)
    errors = [m["data"] for m in messages if m["type"] == "execution_error"]
    if errors:
        return None, errors[0]["exception_message"]
    return single_image(client, prompt_id), None


def run(client, graph):
    """Runs a graph to its single image; fails with the error when it does not run."""
    image, error = outcome(client, graph)
    assert error is None, error
    return image


def with_nodes(graph, nodes, **links):
    """A copy of `graph` with `nodes` added and inputs re-linked: links maps "node.input" to a link."""
    out = copy.deepcopy(graph)
    out.update(copy.deepcopy(nodes))
    for target, link in links.items():
        node, name = target.split(".")
        out[node]["inputs"][name] = link
    return out
