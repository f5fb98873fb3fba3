"""The timers: subscription renewal and the nightly resync. Each only fans out one job per tenant."""

from __future__ import annotations

import azure.functions as func

from shared.bootstrap import container
from shared.observability import bound
from shared.service import jobs, messages
from shared.service.schedules import fan_out

bp = func.Blueprint()


@bp.function_name("renew_subscriptions")
@bp.timer_trigger(arg_name="timer", schedule="%RENEWAL_SCHEDULE%", run_on_startup=False, use_monitor=True)
async def renew_subscriptions(timer: func.TimerRequest, context: func.Context) -> None:
    with bound(
        function="renew_subscriptions",
        invocation_id=context.invocation_id,
        past_due=str(timer.past_due).lower(),
    ):
        await fan_out(container().services, jobs.renew_tenant)


@bp.function_name("prune_messages")
@bp.timer_trigger(arg_name="timer", schedule="0 30 3 * * *", run_on_startup=False, use_monitor=True)
async def prune_messages(timer: func.TimerRequest, context: func.Context) -> None:
    """The message monitor's daily pruning (03:30 UTC): one job per tenant, each by its retention."""
    with bound(
        function="prune_messages", invocation_id=context.invocation_id, past_due=str(timer.past_due).lower()
    ):
        await messages.fan_out_pruning(container().services)


@bp.function_name("nightly_resync")
@bp.timer_trigger(
    arg_name="timer", schedule="%NIGHTLY_RESYNC_SCHEDULE%", run_on_startup=False, use_monitor=True
)
async def nightly_resync(timer: func.TimerRequest, context: func.Context) -> None:
    with bound(
        function="nightly_resync", invocation_id=context.invocation_id, past_due=str(timer.past_due).lower()
    ):
        await fan_out(container().services, jobs.nightly)
