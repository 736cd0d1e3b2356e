"""One process's slice of a client's monthly budget, spent locally (hard spend caps).

A :class:`BudgetLease` mirrors what ``lua/admit.lua`` holds in ``budget:{client}:<month>``
for this process: ``reserved`` (the maximum cost of the runs in flight) + ``free`` (what the
next runs may reserve without a round trip) + costs recorded since the last call (counted
in Redis until the next call replaces the lease). A run reserves its maximum cost from
``free``; once its actual cost is recorded, :meth:`Reservation.settle` ends the reservation
and gives ``free`` what the run did not use, in one step (a run that was not billed gives it
all back with :meth:`Reservation.release`). Should a run ever cost more than it reserved,
``free`` goes below zero and that debt is kept in the next call's ``keep``, so Redis never
holds less than this process may still record.

Nothing here touches Redis or the clock: callers pass monotonic seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BudgetLease", "Reservation"]


@dataclass(slots=True)
class BudgetLease:
    """This process's lease of one client's budget for one month (amounts in pico-USD)."""

    month: str
    free: int = 0
    reserved: int = 0
    expires: float = 0.0
    """Monotonic time by which the lease's Redis deadline has certainly passed."""

    def usable(self, amount: int, until: float) -> bool:
        """Whether ``amount`` can be reserved locally for a run that ends before ``until``."""
        return self.free >= amount and until <= self.expires

    def reserve(self, client_id: str, amount: int) -> Reservation:
        """Take ``amount`` out of ``free`` for one run (the caller checked :meth:`usable`)."""
        self.free -= amount
        self.reserved += amount
        return Reservation(client_id, self, amount)

    def keep(self) -> int:
        """What the next call must keep leased: the runs in flight plus any debt."""
        return self.reserved + max(0, -self.free)

    def begin_sync(self) -> int:
        """Hand ``free`` back for a call that replaces the lease; returns its ``keep``."""
        keep = self.keep()
        self.free = 0
        return keep

    def end_sync(self, granted: int, expires: float) -> None:
        """Add the free amount a call granted (the lease now ends at ``expires``)."""
        self.free += granted
        self.expires = expires

    def settle(self, amount: int, cost: int) -> None:
        """A run that reserved ``amount`` is over and ``cost`` of it was recorded."""
        self.reserved -= amount
        self.free += amount - cost


@dataclass(slots=True)
class Reservation:
    """The maximum cost of one run, held in a lease until the run is settled."""

    client_id: str
    lease: BudgetLease
    amount: int
    done: bool = False

    def settle(self, cost: int) -> None:
        """The run's ``cost`` was recorded: end the reservation (once; later calls do
        nothing)."""
        if not self.done:
            self.done = True
            self.lease.settle(self.amount, cost)

    def release(self) -> None:
        """End the reservation of a run that was not billed (no-op once settled)."""
        self.settle(0)
