"""ComfyUI's file, user-data and information routes against `dreamforge serve`: /object_info,
/settings, /userdata, /upload/image, /view, /system_stats and the small routes the web frontend
reads at boot, each as the frontend (/api/...) and the example scripts (plain paths) call them."""
import io
import json

import pytest
from PIL import Image

# Among the core nodes /object_info offers (every pack's schema tests check the rest).
CORE_NODES = {"CheckpointLoaderSimple", "CLIPTextEncode", "EmptyLatentImage", "KSampler",
              "KSamplerAdvanced", "VAEDecode", "VAEEncode", "LoadImage", "SaveImage",
              "PreviewImage", "ImageScale", "VAELoader", "LoraLoader", "CLIPSetLastLayer",
              "ConditioningCombine", "SamplerCustomAdvanced", "LatentUpscale", "SaveImageWebsocket"}
# ComfyUI's model folder names, in its order.
MODEL_FOLDERS = ["checkpoints", "configs", "loras", "vae", "text_encoders", "diffusion_models",
                 "clip_vision", "style_models", "embeddings", "diffusers", "vae_approx",
                 "controlnet", "gligen", "upscale_models", "hypernetworks", "photomaker",
                 "classifiers"]


def png_bytes(color=(200, 30, 30, 128), size=(8, 6)):
    buffer = io.BytesIO()
    Image.new("RGBA", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(service, name, data, prefix="/api", **fields):
    return service.post(f"{prefix}/upload/image", files={"image": (name, data, "image/png")},
                        data=fields)


def delete(service, path):
    return service.http.delete(service.url(path), timeout=30)


# What a fresh workflows folder holds: the library workflows and the (empty) bookmarks file.
SHIPPED_WORKFLOW_FILES = {"dreamforge_sd1_txt2img.json", "dreamforge_sd1_img2img.json",
                          "dreamforge_sdxl_txt2img.json", "dreamforge_sdxl_img2img.json", ".index.json"}


def users_own(names):
    """The entries of a workflows listing that the service did not ship."""
    return [name for name in names if (name[0] if isinstance(name, list) else name) not in SHIPPED_WORKFLOW_FILES]


@pytest.fixture
def service(start_service):
    return start_service()


@pytest.mark.parametrize("prefix", ["", "/api"])
def test_object_info_has_the_nodes_the_installed_model_and_input_images(start_service, tmp_path, prefix):
    (tmp_path / "data" / "input").mkdir(parents=True)
    (tmp_path / "data" / "input" / "photo.png").write_bytes(png_bytes())
    service = start_service()
    info = service.get(f"{prefix}/object_info").json()
    assert CORE_NODES <= set(info)
    assert all(node["name"] == name for name, node in info.items())
    assert "tiny" in info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0]
    assert info["LoadImage"]["input"]["required"]["image"][0] == ["photo.png"]
    assert info["SaveImage"]["output_node"] is True
    one = service.get(f"{prefix}/object_info/KSampler").json()
    assert list(one) == ["KSampler"] and one["KSampler"] == info["KSampler"]
    assert service.get(f"{prefix}/object_info/NoSuchNode").json() == {}


def test_settings_persist_across_a_restart(start_service, tmp_path):
    service = start_service()
    # A fresh user does not have the frontend ask comfy.org for releases.
    assert service.get("/api/settings").json() == {"Comfy.Notification.ShowVersionUpdates": False}
    assert service.post("/api/settings", {"Comfy.Locale": "en", "Comfy.Count": 3}).status_code == 200
    assert service.post("/api/settings/Comfy.ColorPalette", "dark").status_code == 200
    assert service.post("/settings/Comfy.Count", 4).status_code == 200
    assert service.get("/api/settings/Comfy.ColorPalette").json() == "dark"
    assert service.get("/api/settings/Comfy.Unset").json() is None
    assert service.post("/api/settings", [1, 2]).status_code == 400
    assert service.post("/api/settings", data="{not json").status_code == 400
    service.stop()

    saved = tmp_path / "data" / "user" / "default" / "comfy.settings.json"
    expected = {"Comfy.Notification.ShowVersionUpdates": False, "Comfy.Locale": "en", "Comfy.Count": 4,
                "Comfy.ColorPalette": "dark"}
    assert json.loads(saved.read_text()) == expected
    again = start_service()
    assert again.get("/api/settings").json() == expected
    assert again.get("/settings/Comfy.Locale").json() == "en"


def test_single_user_and_empty_extras(service):
    assert service.get("/api/users").json() == {"storage": "server", "migrated": True}
    for path, expected in [("/embeddings", []), ("/extensions", []), ("/i18n", {}),
                           ("/workflow_templates", {}), ("/global_subgraphs", {}),
                           ("/global_subgraphs/some-id", None), ("/models", MODEL_FOLDERS),
                           ("/models/checkpoints", ["tiny"]), ("/models/loras", [])]:
        for prefix in ("", "/api"):
            response = service.get(prefix + path)
            assert response.status_code == 200 and response.json() == expected, prefix + path
    features = service.get("/api/features").json()
    assert features["supports_preview_metadata"] is True and features["max_upload_size"] > 0
    assert service.get("/api/models/no-such-folder").status_code == 404
    assert service.get("/templates/index.json").json()[0]["title"] == "Dream Forge"  # test_templates.py
    assert service.get("/templates/index_logo.json").json() == {}


def test_the_users_stylesheet_and_boot_files_are_there_for_the_frontend(service, tmp_path):
    user_dir = tmp_path / "data" / "user" / "default"
    for path in ("/user.css", "/api/userdata/user.css"):
        response = service.get(path)
        assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/css")
    (user_dir / "user.css").write_text("body { color: red; }")
    assert service.get("/user.css").text == "body { color: red; }"
    assert service.get("/api/userdata/comfy.templates.json").json() == []
    assert service.get("/api/userdata/workflows%2F.index.json").json() == {"favorites": []}
    assert service.get("/api/userdata?dir=subgraphs&recurse=true&split=false&full_info=true").json() == []


def test_model_folders_for_the_model_library(service):
    folders = service.get("/api/experiment/models").json()
    assert [f["name"] for f in folders] == MODEL_FOLDERS
    assert folders[0]["folders"][0].endswith("models/checkpoints")
    assert [p.rsplit("/", 1)[1] for p in folders[5]["folders"]] == ["unet", "diffusion_models"]
    [model] = service.get("/api/experiment/models/checkpoints").json()
    assert model["name"] == "tiny" and model["pathIndex"] == 0 and model["size"] > 0
    assert isinstance(model["modified"], float) and isinstance(model["created"], float)
    assert service.get("/api/experiment/models/loras").json() == []
    assert service.get("/api/experiment/models/no-such-folder").status_code == 404
    paths = service.get("/internal/folder_paths").json()
    assert paths == {folder["name"]: folder["folders"] for folder in folders}


def test_system_stats_has_the_frontends_shape(service):
    for prefix in ("", "/api"):
        stats = service.get(f"{prefix}/system_stats").json()
        system = stats["system"]
        for key in ("os", "python_version", "comfyui_version", "pytorch_version"):
            assert isinstance(system[key], str) and system[key], key
        assert system["embedded_python"] is False
        assert system["argv"] == ["dreamforge", "serve"]  # options may hold credentials
        assert 0 < system["ram_free"] <= system["ram_total"]
        [device] = stats["devices"]
        assert device["index"] == 0 and device["type"] == "cpu" and isinstance(device["name"], str)
        for key in ("vram_total", "vram_free", "torch_vram_total", "torch_vram_free"):
            assert isinstance(device[key], int)


def test_userdata_save_list_get_move_delete(service, tmp_path):
    user_dir = tmp_path / "data" / "user" / "default"
    body = json.dumps({"nodes": [], "links": []})
    saved = service.post("/api/userdata/workflows%2FMy%20Flow.json?overwrite=false&full_info=false",
                         data=body)
    assert saved.status_code == 200 and saved.json() == "workflows/My Flow.json"
    assert (user_dir / "workflows" / "My Flow.json").read_text() == body
    again = service.post("/api/userdata/workflows%2FMy%20Flow.json?overwrite=false", data="{}")
    assert again.status_code == 409
    info = service.post("/api/userdata/workflows%2Fsub%2Fb.json?full_info=true", data="{}").json()
    assert info["path"] == "workflows/sub/b.json" and info["size"] == 2
    assert isinstance(info["modified"], int) and isinstance(info["created"], int)

    listing = service.get("/api/userdata", params={"dir": "workflows", "recurse": "true",
                                                   "split": "false", "full_info": "true"}).json()
    assert sorted(users_own(entry["path"] for entry in listing)) == ["My Flow.json", "sub/b.json"]
    assert users_own(service.get("/userdata?dir=workflows").json()) == ["My Flow.json"]
    split = service.get("/api/userdata?dir=workflows&recurse=true&split=true").json()
    assert sorted(users_own(split)) == [["My Flow.json", "My Flow.json"], ["sub/b.json", "sub", "b.json"]]
    assert service.get("/api/userdata?dir=no-such-folder").status_code == 404
    assert service.get("/api/userdata").status_code == 400

    read = service.get("/api/userdata/workflows%2FMy%20Flow.json")
    assert read.status_code == 200 and read.text == body
    assert read.headers["Content-Disposition"] == "attachment"
    assert read.headers["X-Content-Type-Options"] == "nosniff"
    assert service.get("/api/userdata/workflows%2Fmissing.json").status_code == 404

    tree = service.get("/api/v2/userdata", params={"path": "workflows"}).json()
    assert [(e["name"], e["type"]) for e in tree if e["name"] not in SHIPPED_WORKFLOW_FILES] == [
        ("sub", "directory"), ("b.json", "file"), ("My Flow.json", "file")]
    assert service.get("/api/v2/userdata?path=nowhere").status_code == 404

    moved = service.post("/api/userdata/workflows%2FMy%20Flow.json/move/workflows%2FRenamed.json")
    assert moved.status_code == 200 and moved.json() == "workflows/Renamed.json"
    assert service.post("/api/userdata/workflows%2FMy%20Flow.json/move/x.json").status_code == 404
    clash = service.post("/api/userdata/workflows%2FRenamed.json/move/workflows%2Fsub%2Fb.json"
                         "?overwrite=false")
    assert clash.status_code == 409
    assert delete(service, "/api/userdata/workflows%2FRenamed.json").status_code == 204
    assert delete(service, "/api/userdata/workflows%2FRenamed.json").status_code == 404
    assert users_own(service.get("/userdata?dir=workflows&recurse=true").json()) == ["sub/b.json"]


def test_userdata_never_leaves_the_user_directory(service, tmp_path):
    data_dir = tmp_path / "data"
    (data_dir / "user" / "secret.txt").write_text("other user")
    assert service.get("/api/userdata/..%2Fsecret.txt").status_code == 403
    assert service.get("/api/userdata/..%2F..%2Fsecret.key").status_code == 403
    assert service.post("/api/userdata/..%2Fescaped.json", data="{}").status_code == 403
    assert service.post("/api/userdata/%2Ftmp%2Fescaped.json", data="{}").status_code == 403
    assert not (data_dir / "user" / "escaped.json").exists()
    service.post("/api/userdata/mine.json", data="{}")
    assert service.post("/api/userdata/mine.json/move/..%2Fescaped.json").status_code == 403
    assert delete(service, "/api/userdata/..%2Fsecret.txt").status_code == 403
    assert (data_dir / "user" / "secret.txt").exists()
    assert service.get("/api/userdata?dir=..").status_code == 403
    assert service.get("/api/v2/userdata?path=..%2F..").status_code == 400


def test_upload_then_view_returns_the_same_bytes_and_names_never_clobber(service, tmp_path):
    first = png_bytes((10, 20, 30, 255))
    answer = upload(service, "cat.png", first)
    assert answer.status_code == 200
    assert answer.json() == {"name": "cat.png", "subfolder": "", "type": "input"}
    view = service.get("/view", params={"filename": "cat.png", "type": "input"})
    assert view.status_code == 200 and view.content == first
    assert view.headers["Content-Type"] == "image/png"
    assert view.headers["Content-Disposition"] == 'filename="cat.png"'

    assert upload(service, "cat.png", first).json()["name"] == "cat.png"  # identical bytes: kept
    second, third = png_bytes((1, 2, 3, 255)), png_bytes((4, 5, 6, 255))
    assert upload(service, "cat.png", second).json()["name"] == "cat (1).png"
    assert upload(service, "cat.png", third).json()["name"] == "cat (2).png"
    assert upload(service, "cat.png", second).json()["name"] == "cat (1).png"
    assert upload(service, "cat.png", third, overwrite="true").json()["name"] == "cat.png"
    assert (tmp_path / "data" / "input" / "cat.png").read_bytes() == third

    pets = upload(service, "dog.png", first, prefix="", subfolder="pets", type="temp").json()
    assert pets == {"name": "dog.png", "subfolder": "pets", "type": "temp"}
    view = service.get("/api/view", params={"filename": "dog.png", "subfolder": "pets", "type": "temp"})
    assert view.content == first
    annotated = service.get("/view", params={"filename": "cat (1).png [input]", "type": "output"})
    assert annotated.status_code == 200 and annotated.content == second
    loadable = service.get("/api/object_info/LoadImage").json()
    assert {"cat.png", "cat (1).png", "cat (2).png"} <= set(loadable["LoadImage"]["input"]["required"]["image"][0])


def test_bad_uploads_are_refused(service, tmp_path):
    image = png_bytes()
    assert service.post("/api/upload/image", {"image": "not a form"}).status_code == 400
    assert service.post("/api/upload/image", files={"other": ("a.png", image)}).status_code == 400
    assert service.post("/api/upload/image", files={"image": (None, "a field, not a file")}).status_code == 400
    assert upload(service, "", image).status_code == 400
    assert upload(service, "fake.png", b"<html>not an image</html>").status_code == 400
    assert upload(service, "cut.png", image[: len(image) // 2]).status_code == 400
    assert upload(service, "../up.png", image).status_code == 400
    assert upload(service, "a.png", image, subfolder="../../outside").status_code == 400
    assert upload(service, "a.png", image, type="models").status_code == 400
    broken = service.post("/api/upload/image", data=b"--x\r\nno headers end",
                          headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert broken.status_code == 400
    assert not (tmp_path / "outside").exists() and not (tmp_path / "data" / "up.png").exists()
    assert list((tmp_path / "data" / "input").iterdir()) == []


def test_uploads_over_the_body_limit_are_refused(start_service):
    service = start_service("--max-body-bytes", "4096")
    assert upload(service, "big.png", png_bytes(size=(200, 200)) + b"\0" * 8192).status_code == 413


def test_view_refuses_bad_names_types_and_folders(service, tmp_path):
    (tmp_path / "data" / "output" / "a.png").write_bytes(png_bytes())
    (tmp_path / "data" / "secret.png").write_bytes(png_bytes())
    assert service.get("/view?filename=a.png").status_code == 200
    assert service.get("/view").status_code == 404
    assert service.get("/view?filename=").status_code == 400
    assert service.get("/view", params={"filename": "../secret.png"}).status_code == 400
    assert service.get("/view", params={"filename": "/etc/passwd"}).status_code == 400
    assert service.get("/view", params={"filename": "a.png", "type": "models"}).status_code == 400
    assert service.get("/view", params={"filename": "secret.png", "subfolder": ".."}).status_code == 403
    assert service.get("/view", params={"filename": "a.png", "subfolder": "/etc"}).status_code == 403
    assert service.get("/view", params={"filename": "missing.png"}).status_code == 404
    assert service.get("/view", params={"filename": "a.png", "type": "input"}).status_code == 404
    assert service.get("/view", params={"filename": "sub/a.png"}).status_code == 200  # basename only


def test_view_previews_and_channels(service, tmp_path):
    (tmp_path / "data" / "output" / "pic.png").write_bytes(png_bytes((200, 30, 30, 128), (16, 12)))
    jpeg = service.get("/api/view", params={"filename": "pic.png", "preview": "jpeg;90"})
    assert jpeg.status_code == 200 and jpeg.headers["Content-Type"] == "image/jpeg"
    assert jpeg.headers["Content-Disposition"] == 'filename="pic.jpeg"'
    decoded = Image.open(io.BytesIO(jpeg.content))
    assert decoded.format == "JPEG" and decoded.size == (16, 12)
    webp = service.get("/api/view", params={"filename": "pic.png", "preview": "webp;50"})
    assert webp.headers["Content-Type"] == "image/webp"
    assert Image.open(io.BytesIO(webp.content)).format == "WEBP"
    alpha_preview = service.get("/api/view", params={"filename": "pic.png", "preview": "jpeg;90",
                                                     "channel": "rgba"})
    assert alpha_preview.headers["Content-Type"] == "image/webp"

    rgb = Image.open(io.BytesIO(service.get("/view?filename=pic.png&channel=rgb").content))
    assert rgb.mode == "RGB" and rgb.getpixel((0, 0)) == (200, 30, 30)
    alpha = Image.open(io.BytesIO(service.get("/view?filename=pic.png&channel=a").content))
    assert alpha.mode == "RGBA" and alpha.getpixel((0, 0)) == (0, 0, 0, 128)
