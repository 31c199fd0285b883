"""Dream Forge's workflow templates in the web frontend's template browser: the index in the
frontend's format, each template's UI workflow and thumbnail, every template run to an image on tiny
models, and 404 for any other file under /templates/."""
import http.client
import io
import urllib.parse

from PIL import Image

from template_runs import INPUT_IMAGE_SIZE, catalog, cut_for_cpu, install_tiny_models, \
    run_to_image, template_graph, upload_input_image
from test_comfy_workflow_library import prompt_from_ui

NAMES = [entry["name"] for entry in catalog()]


def tiny_name(file_name):
    """The tiny stand-in for a model file a template names."""
    return "tiny_" + file_name


def without_titles(graph):
    return {node_id: {"class_type": node["class_type"], "inputs": node["inputs"]}
            for node_id, node in graph.items()}


def test_the_index_lists_every_template_in_one_dream_forge_category(start_service):
    service = start_service()
    response = service.get("/templates/index.json")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("application/json")
    (category,) = response.json()
    assert category["moduleName"] == "default" and category["title"] == "Dream Forge"
    assert [card["name"] for card in category["templates"]] == NAMES
    for card, entry in zip(category["templates"], catalog()):
        assert card["mediaType"] == "image" and card["mediaSubtype"] == "webp"
        assert card["title"] == entry["title"] and card["description"] == entry["description"]
        assert card["models"] == entry["models"]
    assert service.get("/templates/index_logo.json").json() == {}


def test_each_template_serves_its_workflow_and_thumbnail(start_service):
    service = start_service()
    object_info = service.get("/api/object_info").json()
    for name in NAMES:
        response = service.get(f"/templates/{name}.json")
        assert response.status_code == 200, response.text
        workflow = response.json()
        assert workflow["version"] == 0.4
        # The frontend turns the workflow back into the template's graph.
        assert prompt_from_ui(workflow, object_info) == without_titles(template_graph(name)), name

        thumbnail = service.get(f"/templates/{name}-1.webp")
        assert thumbnail.status_code == 200 and thumbnail.headers["Content-Type"] == "image/webp"
        image = Image.open(io.BytesIO(thumbnail.content))
        assert image.format == "WEBP" and max(image.size) <= 256, name


def expected_size(graph):
    """The size of the image a cut graph makes: its upscaled or empty latent's, else the input
    image's."""
    for class_type in ("LatentUpscale", "EmptyLatentImage"):
        for node in graph.values():
            if node["class_type"] == class_type:
                return node["inputs"]["width"], node["inputs"]["height"]
    return INPUT_IMAGE_SIZE


def test_every_template_runs_to_an_image_on_tiny_models(start_service, tmp_path):
    data_dir = tmp_path / "data"
    install_tiny_models(data_dir, tiny_name)
    service = start_service(data_dir=data_dir, model=False)
    upload_input_image(service)
    for name in NAMES:
        graph = cut_for_cpu(template_graph(name), tiny_name)
        assert run_to_image(service, graph).size == expected_size(graph), name


def raw_get(service, path):
    """GET with the path sent exactly as written (no client normalizing "..")."""
    address = urllib.parse.urlsplit(service.base_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


HOSTILE_PATHS = [
    "/templates/no_such_template.json", "/templates/no_such_template-1.webp",
    "/templates/catalog.json", "/templates/dreamforge_sd15_lora.api.json",
    "/templates/dreamforge_sd15_lora-2.webp", "/templates/DREAMFORGE_SD15_LORA.json",
    "/templates/./dreamforge_sd15_lora.json", "/templates/sub/dreamforge_sd15_lora.json",
    "/templates/../CMakeLists.txt", "/templates/../../../../etc/passwd",
    "/templates/%2e%2e/catalog.json", "/templates/..%2fcatalog.json",
    "/templates/%2e%2e%2f%2e%2e%2f%2e%2e%2fCMakeLists.txt", "/templates/..%5ccatalog.json",
    "/templates//etc/passwd", "/templates/%2fetc%2fpasswd", "/templates/dreamforge_sd15_lora.json%00",
]


def test_unknown_and_hostile_names_get_404(start_service):
    service = start_service()
    for path in HOSTILE_PATHS:
        status, body = raw_get(service, path)
        assert status == 404, (path, body)
        assert b"ckpt_name" not in body and b"root:" not in body, path
