// A one-event iCalendar file for the booked slot. Times are "floating"
// (no time zone): the slot's wall-clock time at the venue, which is what a
// visitor's calendar should show.

import type { Slot } from './api';

const esc = (s: string) => s.replace(/[\\;,]/g, (c) => `\\${c}`).replace(/\n/g, '\\n');
const stamp = (date: string, time: string) => `${date.replace(/-/g, '')}T${time.replace(/:/g, '').padEnd(6, '0').slice(0, 6)}`;

export function icsFor(slot: Slot, reservationId: string, summary: string, description: string): string {
  const now = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '');
  return [
    'BEGIN:VCALENDAR',
    'VERSION:2.0',
    'PRODID:-//Entrada//Customer page//EN',
    'CALSCALE:GREGORIAN',
    'METHOD:PUBLISH',
    'BEGIN:VEVENT',
    `UID:${reservationId}@entrada`,
    `DTSTAMP:${now}`,
    `DTSTART:${stamp(slot.date, slot.start_time)}`,
    `DTEND:${stamp(slot.date, slot.end_time)}`,
    `SUMMARY:${esc(summary)}`,
    `DESCRIPTION:${esc(description)}`,
    'END:VEVENT',
    'END:VCALENDAR',
    '',
  ].join('\r\n');
}

export function icsHref(text: string): string {
  return `data:text/calendar;charset=utf-8,${encodeURIComponent(text)}`;
}
