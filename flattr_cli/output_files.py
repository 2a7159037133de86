"""Files the `flattr` command writes: never over one that is there, unless forced."""

from pathlib import Path

from core.errors import DomainError


class OutputExists(DomainError):
    """The file a command would write is there already: a usage error (exit 2)."""

    code = "file_exists"
    exit_code = 2


class OutputUnwritable(DomainError):
    code = "cannot_write_file"


class OutputFile:
    """Where a file the command makes goes (a payout batch). A file there already is
    refused (OutputExists) unless `force`; otherwise the name is taken at once (an empty
    file) so that no other writer can take it meanwhile. The document is written whole
    beside it (`.part`), `place` puts it there, and `abandon` takes back all of it when the
    command fails before."""

    def __init__(self, path: Path, force: bool) -> None:
        self.path, self.force = path, force
        self.part = path.with_name(path.name + ".part")
        self.taken = self.written = False

    def refuse_existing(self) -> None:
        if not self.force and (self.path.exists() or self.path.is_symlink()):
            raise OutputExists(f"{self.path} exists already: name another file with --out, "
                               "or add --force to overwrite it")

    def write(self, document: bytes) -> None:
        self.refuse_existing()
        try:
            if not self.force:
                with self.path.open("xb"):
                    self.taken = True
            self.written = True
            self.part.write_bytes(document)
        except FileExistsError:  # made meanwhile by someone else
            raise OutputExists(f"{self.path} was made meanwhile: name another file with "
                               "--out, or add --force to overwrite it") from None
        except OSError as error:
            raise OutputUnwritable(f"cannot write {self.path}: {error.strerror or error}"
                                   ) from None

    def place(self) -> None:
        try:
            self.part.replace(self.path)
        except OSError as error:
            raise OutputUnwritable(f"cannot put the file in place at {self.path} "
                                   f"({error.strerror or error}); it is whole at {self.part}"
                                   ) from None

    def abandon(self) -> None:
        if self.written:
            self.part.unlink(missing_ok=True)
        if self.taken:
            self.path.unlink(missing_ok=True)
