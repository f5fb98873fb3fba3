"""The emulator's calendar: Outlook events, series, calendar views and calendarView delta (per mailbox).

Seam with the core: `model.MailboxOwner`, `model.ChangeEvent`, `store.CalendarStore`,
`routes.MailboxResolver`, `routes.add_calendar_routes`. Behaviour notes: NOTES.md.
"""
