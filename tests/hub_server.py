"""A Hub-compatible HTTP server on 127.0.0.1 for the tests: what huggingface_hub and transformers call to push a model
and to load it back, and nothing more.

Uploading: repository creation, branch creation, the README metadata check, pre-upload (every file is answered
"regular", so its content comes base64-encoded inside the commit: no LFS or Xet upload) and the NDJSON commit.
Loading: `HEAD`/`GET /{repo}/resolve/{revision}/{path}` with the headers `hf_hub_download` needs (`ETag`,
`X-Repo-Commit`, `Content-Length`), repository info (`/api/models/{repo}[/revision/{revision}]`) and file listings
(`/api/models/{repo}/tree/{revision}[/{path}]`, which transformers' tokenizer loading asks for). Errors carry the
`X-Error-Code` huggingface_hub turns into its `RepositoryNotFoundError`, `RevisionNotFoundError` and
`EntryNotFoundError`. Private repositories answer only requests with a token, as on the Hub. Anything else is a 404
(huggingface_hub's optional fetch of `/api/agent-harnesses` gets one and does without).

Every commit is a full copy of the repository's files in `root/<org>/<name>/<commit>/`; `repos` holds each
repository's visibility (`private`), `branches` (branch -> commit) and `commits` (branch, oid and summary of each).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import shutil
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit


class HubError(Exception):
    def __init__(self, status: HTTPStatus, code: str | None, message: str, **extra: str):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


class HubServer:
    """Start with `start()` (a thread, a free port), stop with `stop()`; `url` is the endpoint to give `HF_ENDPOINT`."""

    def __init__(self, root: Path):
        self.root = root
        self.repos: dict[str, dict[str, Any]] = {}
        self.requests: list[str] = []  # "METHOD /path", in order: what the clients asked for
        self._lock = threading.Lock()
        self._counter = itertools.count()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> HubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def snapshot(self, repo_id: str, revision: str = "main") -> Path:
        """The folder of the repository's files at a branch or commit."""
        return self.root / repo_id / self._commit(repo_id, revision)

    def _url(self, repo_id: str) -> str:
        return f"{self.url}/{repo_id}"

    # --- repository state ---------------------------------------------------------------------------------------

    def _repo(self, repo_id: str, authorized: bool) -> dict[str, Any]:
        repo = self.repos.get(repo_id)
        # As the Hub: a private repository is indistinguishable from a missing one to a client without a token.
        if repo is None or (repo["private"] and not authorized):
            raise HubError(HTTPStatus.NOT_FOUND, "RepoNotFound", f"Repository {repo_id} not found")
        return repo

    def _commit(self, repo_id: str, revision: str) -> str:
        repo = self.repos[repo_id]
        if revision in repo["branches"]:
            return repo["branches"][revision]
        if (self.root / repo_id / revision).is_dir():
            return revision
        raise HubError(HTTPStatus.NOT_FOUND, "RevisionNotFound", f"Invalid rev id: {revision}")

    def _new_commit(self, repo_id: str, parent: str | None, files: dict[str, bytes], deleted: list[str]) -> str:
        digest = hashlib.sha1(f"{repo_id} {parent} {next(self._counter)}".encode())  # unique, even if empty
        for path, content in sorted(files.items()):
            digest.update(path.encode() + hashlib.sha1(content).digest())
        oid = digest.hexdigest()
        folder = self.root / repo_id / oid
        if parent is None:
            folder.mkdir(parents=True)
        else:
            shutil.copytree(self.root / repo_id / parent, folder)
        for path in deleted:
            (folder / path).unlink(missing_ok=True)
        for path, content in files.items():
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_bytes(content)
        return oid

    # --- endpoints ----------------------------------------------------------------------------------------------

    def create_repo(self, body: dict, authorized: bool) -> dict:
        if not authorized:
            raise HubError(HTTPStatus.UNAUTHORIZED, None, "Invalid credentials in Authorization header")
        repo_id = f"{body['organization']}/{body['name']}" if body.get("organization") else body["name"]
        with self._lock:
            if repo_id in self.repos:
                # With the repository's URL, as the Hub: `create_repo(exist_ok=True)` returns it.
                raise HubError(HTTPStatus.CONFLICT, None, "You already created this model repo", url=self._url(repo_id))
            self.repos[repo_id] = {"private": body.get("visibility") == "private", "branches": {}, "commits": []}
            self.repos[repo_id]["branches"]["main"] = self._new_commit(repo_id, None, {}, [])
        return {"url": self._url(repo_id), "name": repo_id}

    def create_branch(self, repo_id: str, branch: str, body: dict, authorized: bool) -> dict:
        with self._lock:
            repo = self._repo(repo_id, authorized)
            if branch in repo["branches"]:
                raise HubError(HTTPStatus.CONFLICT, None, f"Reference refs/heads/{branch} already exists")
            repo["branches"][branch] = self._commit(repo_id, body.get("startingPoint") or "main")
        return {}

    def preupload(self, repo_id: str, revision: str, body: dict, authorized: bool) -> dict:
        self._repo(repo_id, authorized)
        self._commit(repo_id, revision)  # an unknown revision fails here, as on the Hub
        # "regular": the content comes base64-encoded in the commit itself (no LFS or Xet upload); no "oid": the
        # client then never skips a file as unchanged.
        files = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in body["files"]]
        return {"files": files}

    def commit(self, repo_id: str, branch: str, lines: list[dict], authorized: bool) -> dict:
        files: dict[str, bytes] = {}
        deleted: list[str] = []
        summary = ""
        for line in lines:
            key, value = line["key"], line["value"]
            if key == "header":
                summary = value["summary"]
            elif key == "file":
                if value.get("encoding") != "base64":
                    raise HubError(HTTPStatus.BAD_REQUEST, None, f"unsupported encoding {value.get('encoding')}")
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                deleted.append(value["path"])
            else:  # lfsFile, deletedFolder: this server is asked for regular files only
                raise HubError(HTTPStatus.BAD_REQUEST, None, f"this test server does not support {key!r}")
        with self._lock:
            repo = self._repo(repo_id, authorized)
            if branch not in repo["branches"]:
                raise HubError(HTTPStatus.NOT_FOUND, "RevisionNotFound", f"Invalid rev id: {branch}")
            oid = self._new_commit(repo_id, repo["branches"][branch], files, deleted)
            repo["branches"][branch] = oid
            repo["commits"].append({"branch": branch, "oid": oid, "summary": summary})
        return {"success": True, "commitOid": oid, "commitUrl": f"{self.url}/{repo_id}/commit/{oid}"}

    def repo_info(self, repo_id: str, revision: str, authorized: bool) -> dict:
        repo = self._repo(repo_id, authorized)
        oid = self._commit(repo_id, revision)
        folder = self.root / repo_id / oid
        siblings = [{"rfilename": p.relative_to(folder).as_posix()} for p in sorted(folder.rglob("*")) if p.is_file()]
        return {"id": repo_id, "modelId": repo_id, "sha": oid, "private": repo["private"], "siblings": siblings}

    def tree(self, repo_id: str, revision: str, path: str, recursive: bool, authorized: bool) -> list[dict]:
        self._repo(repo_id, authorized)
        snapshot = self.root / repo_id / self._commit(repo_id, revision)
        folder = snapshot / path
        if not folder.is_dir():
            raise HubError(HTTPStatus.NOT_FOUND, "EntryNotFound", f"{path} does not exist on {revision}")
        entries = []
        for entry in sorted(folder.rglob("*") if recursive else folder.iterdir()):
            name = entry.relative_to(snapshot).as_posix()
            if entry.is_dir():
                entries.append({"type": "directory", "path": name, "oid": _blob_id(name.encode()), "size": 0})
            else:
                content = entry.read_bytes()
                entries.append({"type": "file", "path": name, "oid": _blob_id(content), "size": len(content)})
        return entries

    def resolve(self, repo_id: str, revision: str, path: str, authorized: bool) -> tuple[bytes, dict[str, str]]:
        self._repo(repo_id, authorized)
        oid = self._commit(repo_id, revision)
        file = self.root / repo_id / oid / path
        if not file.is_file():
            raise HubError(HTTPStatus.NOT_FOUND, "EntryNotFound", f"{path} does not exist on {revision}")
        content = file.read_bytes()
        return content, {"ETag": f'"{_blob_id(content)}"', "X-Repo-Commit": oid}


def _handler(hub: HubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the clients expect

        def log_message(self, format, *args):  # noqa: A002 (the base class's signature)
            pass  # requests are recorded in hub.requests instead of printed

        def do_HEAD(self):
            self._serve(head=True)

        def do_GET(self):
            self._serve()

        def do_POST(self):
            self._serve()

        def _serve(self, head: bool = False) -> None:
            hub.requests.append(f"{self.command} {self.path}")
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            authorized = self.headers.get("Authorization", "").startswith("Bearer ")
            parts = [unquote(part) for part in urlsplit(self.path).path.strip("/").split("/")]
            try:
                content, headers = self._route(self.command, parts, body, authorized)
            except HubError as err:
                content = json.dumps({"error": err.message, **err.extra}).encode()
                headers = {"X-Error-Message": err.message, **({"X-Error-Code": err.code} if err.code else {})}
                self._send(err.status, content, {"Content-Type": "application/json", **headers}, head)
                return
            self._send(HTTPStatus.OK, content, headers, head)

        def _route(self, method: str, parts: list[str], body: bytes, authorized: bool) -> tuple[bytes, dict]:
            if method == "POST" and parts == ["api", "repos", "create"]:
                return _json(hub.create_repo(json.loads(body), authorized))
            if method == "POST" and parts == ["api", "validate-yaml"]:
                return _json({"errors": [], "warnings": []})
            if parts[:2] == ["api", "models"] and len(parts) >= 4:
                # /api/models/{org}/{name}/{action}/{revision}/{path}: the revision comes quoted, slashes and all.
                repo_id, action = "/".join(parts[2:4]), parts[4:5]
                revision, path = (parts[5] if len(parts) > 5 else "main"), "/".join(parts[6:])
                if method == "POST" and action == ["preupload"]:
                    return _json(hub.preupload(repo_id, revision, json.loads(body), authorized))
                if method == "POST" and action == ["commit"]:
                    lines = [json.loads(line) for line in body.splitlines() if line.strip()]
                    return _json(hub.commit(repo_id, revision, lines, authorized))
                if method == "POST" and action == ["branch"]:
                    return _json(hub.create_branch(repo_id, revision, json.loads(body or b"{}"), authorized))
                if method == "GET" and action in ([], ["revision"]):
                    return _json(hub.repo_info(repo_id, revision, authorized))
                if method == "GET" and action == ["tree"]:
                    recursive = "recursive=true" in urlsplit(self.path).query
                    return _json(hub.tree(repo_id, revision, path, recursive, authorized))
            if method in ("GET", "HEAD") and len(parts) >= 5 and parts[2] == "resolve":
                content, headers = hub.resolve("/".join(parts[:2]), parts[3], "/".join(parts[4:]), authorized)
                return content, {"Content-Type": "application/octet-stream", **headers}
            raise HubError(HTTPStatus.NOT_FOUND, None, f"this test server does not answer {method} {self.path}")

        def _send(self, status: HTTPStatus, content: bytes, headers: dict[str, str], head: bool) -> None:
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(content))}.items():
                self.send_header(name, value)
            self.end_headers()
            if not head:
                self.wfile.write(content)

    return Handler


def _json(payload: dict | list) -> tuple[bytes, dict[str, str]]:
    return json.dumps(payload).encode(), {"Content-Type": "application/json"}


def _blob_id(content: bytes) -> str:
    """The git blob id of a file's content, as the Hub gives it (`ETag`, tree `oid`)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()
