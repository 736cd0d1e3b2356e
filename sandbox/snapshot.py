"""The snapshot template: an initialized QuickJS instance captured as a memory image.

Instance state is linear memory (bytes and size) plus ``__stack_pointer``: the module has no
other mutable global, table write or passive segment (audited in the prototype), and the stack
guard's own globals are set from here. Building one:

1. instantiate; ``_initialize``; ``JS_NewRuntime``; ``JS_NewContext``; compile the prelude,
   write it out without its source text and read it back (``JS_WriteObject`` /
   ``JS_ReadObject``), evaluate it (its completion value is ``[finish, caps buffer]``, held
   only by the host); allocate scratch buffers;
2. move the C stack into a ``STACK_BYTES`` block allocated in the heap (the reactor's own
   stack is ~64 KiB, i.e. fewer than 200 JavaScript frames) and arm the stack guard;
3. copy linear memory: every run starts from this image.

``JSContext.random_state`` is seeded from the clock in ``JS_NewContext`` and would be frozen
into the image, so ``find_random_state`` locates it (memory diff around one ``Math.random()``,
then checked with seeded runs) for the host to reseed before every run. ``find_job_list``
locates ``JSRuntime.job_list`` the same way (checked against ``JS_IsJobPending``), so the host
can see that the job queue is empty without a wasm call.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import wasmtime

from sandbox import _stackguard, modules
from sandbox._engine import Compiled
from sandbox._guest import TAG_EXCEPTION, TAG_OBJECT, Guest, tag
from sandbox._prelude import CAP_SLOTS, FILENAME, source

STACK_BYTES = 512 * 1024
STACK_MARGIN = 256
SOURCE_CAPACITY = 64 * 1024 + 256
_CTX_SEARCH = 4096
_COMPILE_ONLY = 1 << 5  # JS_EVAL_FLAG_COMPILE_ONLY
_WRITE_STRIPPED = (1 << 0) | (1 << 4)  # JS_WRITE_OBJ_BYTECODE | JS_WRITE_OBJ_STRIP_SOURCE
_READ_BYTECODE = 1 << 0  # JS_READ_OBJ_BYTECODE


@dataclass(frozen=True, slots=True)
class Template:
    """The image and the guest addresses every run uses (valid in every copy of the image)."""

    image: bytes
    rt: int
    ctx: int
    finish: int  # JSValue of the prelude's finish()
    caps: int  # address of the prelude's Int32Array (see _prelude: CAP_*)
    tick: int  # JSValue of the prelude's tick() (fires the next due timer)
    global_obj: int  # JSValue of globalThis
    source: int  # scratch buffer for the wrapped code: only the host writes it, so a reset
    source_capacity: int  # copies back just the bytes the last run wrote, not all of it
    lenp: int  # size_t out-parameter of JS_ToCStringLen2
    pctx: int  # JSContext* out-parameter of JS_ExecutePendingJob
    argv: int  # one JSValue slot for JS_Call
    filename: int  # "<code>"
    context_key: int  # "context"
    stack_lo: int
    stack_limit: int
    stack_top: int
    full: bool = True  # built with the modules and Worker globals (see sandbox.modules)
    random_state: int | None = None
    job_list: int | None = None  # &JSRuntime.job_list (a list_head: prev, next)

    @property
    def source_end(self) -> int:
        """End of the source buffer."""
        return self.source + self.source_capacity

    @property
    def size(self) -> int:
        """Image size in bytes (a whole number of wasm pages)."""
        return len(self.image)

    def with_random_state(self, addr: int) -> Template:
        """A copy that knows where ``JSContext.random_state`` lives."""
        return self.replace(random_state=addr)

    def replace(self, **changes: int | bool | None) -> Template:
        """A copy with ``changes`` applied."""
        fields = {name: getattr(self, name) for name in self.__slots__}
        fields.update(changes)
        return Template(**fields)


def arm_stack(guest: Guest, template: Template) -> None:
    """Point the C stack at the template's stack block and arm the guard."""
    guest.set_global(_stackguard.EXPORT_SP, template.stack_top)
    guest.set_global(_stackguard.EXPORT_LIMIT, template.stack_limit)
    guest.set_global(_stackguard.EXPORT_LOW, template.stack_top)
    guest.set_global(_stackguard.EXPORT_OVERFLOW, 0)


def _compile_prelude(compiled: Compiled, fast: bool, full: bool) -> bytes:
    """The prelude's bytecode without its source text, compiled in a scratch guest.

    Compiling in the guest of the image would leave the parser's freed memory inside the
    heap range that every run copies back (see ``execution.Instance._reset``).
    """
    scratch = Guest(compiled, fast)
    try:
        scratch.initialize()
        ctx = scratch.new_context(scratch.new_runtime()) & 0xFFFFFFFF
        lenp = scratch.alloc(bytes(8))
        text = source(full).encode() + b"\0"
        src = scratch.alloc(text)
        name = scratch.alloc(FILENAME.encode() + b"\0")
        function = scratch.eval(ctx, src, len(text) - 1, name, _COMPILE_ONLY)
        if tag(function) == TAG_EXCEPTION:
            error = scratch.string(ctx, scratch.get_exception(ctx), lenp)
            raise RuntimeError(f"prelude failed: {error}")
        blob = scratch.write_object(ctx, lenp, function, _WRITE_STRIPPED) & 0xFFFFFFFF
        if not blob:
            raise RuntimeError("prelude: JS_WriteObject failed")
        return scratch.read(blob, _u32(scratch.read(lenp, 4), 0))
    finally:
        scratch.close()


def _load_prelude(guest: Guest, ctx: int, lenp: int, blob: int, size: int) -> tuple[int, int, int]:
    """Evaluate the prelude's bytecode (``size`` bytes at ``blob``); return its three handles.

    ``finish``, the address of the ``caps`` buffer and ``tick`` (fires the next due timer).
    """
    function = guest.read_object(ctx, blob, size, _READ_BYTECODE)
    handles = guest.eval_function(ctx, function) if tag(function) != TAG_EXCEPTION else function
    if tag(handles) != TAG_EXCEPTION:
        finish = guest.get_index(ctx, handles, 0)
        caps = guest.array_buffer(ctx, lenp, guest.get_index(ctx, handles, 1)) & 0xFFFFFFFF
        tick = guest.get_index(ctx, handles, 2)
        size_ok = _u32(guest.read(lenp, 4), 0) == 4 * CAP_SLOTS
        if tag(finish) == TAG_OBJECT == tag(tick) and caps and size_ok:
            return finish, caps, tick
        raise RuntimeError("prelude: unexpected handles")
    error = guest.string(ctx, guest.get_exception(ctx), lenp)
    raise RuntimeError(f"prelude failed: {error}")


def build(compiled: Compiled, fast: bool, full: bool = True) -> tuple[Template, Guest]:
    """Build the template; also return the guest it was built in (its memory equals the image).

    ``full``: with the modules and Worker globals, else the plain snapshot (stand-ins that
    send the code to the full one; see ``sandbox.modules``).
    """
    code = _compile_prelude(compiled, fast, full)
    guest = Guest(compiled, fast)
    guest.initialize()
    rt = guest.new_runtime() & 0xFFFFFFFF
    ctx = guest.new_context(rt) & 0xFFFFFFFF
    if not rt or not ctx:
        raise RuntimeError("QuickJS runtime or context creation failed")
    filename = guest.alloc(b"<code>\0")
    lenp = guest.alloc(bytes(8))
    # The source buffer and the stack block come first: the prelude's objects then lie above
    # the stack block, and its bytecode is read from the (still unused) stack block, so no
    # freed hole is left in the heap that every run copies back.
    source_buffer = guest.alloc(bytes(SOURCE_CAPACITY))
    block = guest.alloc(bytes(STACK_BYTES))
    if len(code) > STACK_BYTES // 2:
        raise RuntimeError("the prelude's bytecode does not fit in the stack block")
    guest.write(block, code)
    finish, caps, tick = _load_prelude(guest, ctx, lenp, block, len(code))
    modules.load(guest, ctx, lenp)
    while guest.execute_pending_job(rt, lenp) > 0:  # the module evaluation's promise
        pass
    template = Template(
        image=b"",
        rt=rt,
        ctx=ctx,
        finish=finish,
        caps=caps,
        tick=tick,
        global_obj=guest.global_object(ctx),
        source=source_buffer,
        source_capacity=SOURCE_CAPACITY,
        lenp=lenp,
        pctx=guest.alloc(bytes(8)),
        argv=guest.alloc(bytes(16)),
        filename=filename,
        context_key=guest.alloc(b"context\0"),
        stack_lo=0,
        stack_limit=0,
        stack_top=0,
        full=full,
    )
    stack_top = (block + STACK_BYTES) & ~15
    fields = {name: getattr(template, name) for name in Template.__slots__}
    fields.update(
        stack_lo=block,
        stack_limit=block + STACK_MARGIN,
        stack_top=stack_top,
        image=guest.read(0, guest.size()),
    )
    template = Template(**fields)
    if template.source_end > template.stack_lo:
        raise RuntimeError("the source buffer must lie below the stack block")
    arm_stack(guest, template)
    return template, guest


def _random(guest: Guest, template: Template, seed: int | None) -> tuple[str, bytes]:
    """Evaluate ``Math.random()`` in a pristine image; return the value and the memory after."""
    guest.write(0, template.image)
    arm_stack(guest, template)
    if seed is not None and template.random_state is not None:
        guest.write(template.random_state, struct.pack("<Q", seed))
    code = b"Math.random()\0"
    guest.write(template.source, code)
    value = guest.eval(template.ctx, template.source, len(code) - 1, template.filename, 0)
    text = guest.string(template.ctx, value, template.lenp)
    return text, guest.read(0, template.size)


def find_random_state(guest: Guest, template: Template) -> int:
    """Locate ``JSContext.random_state`` in ``guest`` (whose memory may be overwritten)."""
    _, after = _random(guest, template, None)
    before = template.image
    ctx = template.ctx
    candidates = sorted(
        {(i - ctx) & ~7 for i in range(ctx, ctx + _CTX_SEARCH) if before[i] != after[i]}
    )
    for offset in candidates:
        probe = template.with_random_state(ctx + offset)
        try:  # a wrong candidate can corrupt the context; the image is rewritten each time
            first = _random(guest, probe, 0x1234_5678_9ABC)[0]
            other = _random(guest, probe, 0x0FED_CBA9_8765)[0]
            again = _random(guest, probe, 0x1234_5678_9ABC)[0]
        except (wasmtime.Trap, wasmtime.WasmtimeError):
            continue
        if first == again and first != other:
            guest.write(0, template.image)
            arm_stack(guest, template)
            return ctx + offset
    raise RuntimeError("JSContext.random_state not found")


_LIST_SEARCH = 1024
_QUEUE_JOBS = b"Promise.resolve().then(() => {}); Promise.resolve().then(() => {}); 0\0"


def _u32(data: bytes, addr: int) -> int:
    return int.from_bytes(data[addr : addr + 4], "little")


def _pending(guest: Guest, template: Template) -> int:
    return int(guest.is_job_pending(template.rt))


def find_job_list(guest: Guest, template: Template) -> int | None:
    """Locate ``JSRuntime.job_list`` in ``guest`` (whose memory is then reset), or ``None``.

    An empty ``list_head`` points to itself (``prev == next == &head``); the job list is the
    one such head in ``JSRuntime`` that stops being empty when jobs are queued. The answer is
    checked against ``JS_IsJobPending`` while two queued jobs are run one by one.
    """
    image, rt = template.image, template.rt
    empty = [
        addr
        for addr in range(rt, rt + _LIST_SEARCH, 4)
        if _u32(image, addr) == addr and _u32(image, addr + 4) == addr
    ]
    guest.write(0, image)
    arm_stack(guest, template)
    found: int | None = None
    try:
        guest.write(template.source, _QUEUE_JOBS)
        value = guest.eval(
            template.ctx, template.source, len(_QUEUE_JOBS) - 1, template.filename, 0
        )
        after = guest.read(0, template.size)
        changed = [addr for addr in empty if _u32(after, addr + 4) != addr]
        if tag(value) != TAG_EXCEPTION and len(changed) == 1 and _pending(guest, template):
            head = changed[0]
            states = []
            while True:
                states.append((_u32(guest.read(head, 8), 4) != head, _pending(guest, template)))
                if guest.execute_pending_job(template.rt, template.pctx) <= 0:
                    break
            states.append((_u32(guest.read(head, 8), 4) != head, _pending(guest, template)))
            if states == [(True, 1), (True, 1), (False, 0), (False, 0)]:
                found = head
    except (wasmtime.Trap, wasmtime.WasmtimeError):
        found = None
    guest.write(0, image)
    arm_stack(guest, template)
    return found
