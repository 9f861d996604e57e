/* frontdesk inbox: the agents' page. Plain JavaScript, no build step.
 * Talks to /ws/agent as protocol.md ("Agent frames" and "Inbox workflow") describes.
 * Every text that came over the network is inserted with textContent, never as HTML.
 *
 * The list shows one filter at a time (status, assignee, search), asked of the server
 * with `list` and paged with its cursor as the agent scrolls; live summaries move rows
 * in and out of it. Rows are updated in place, never rebuilt, so focus and the scroll
 * position survive updates. Unread counts are the server's (per agent); the page only
 * says what it has read (`mark_read`) while the agent is looking.
 *
 * Every text of the page is in STRINGS (English and German), picked by the choice in
 * settings or the browser's language. Links in messages are built with DOM APIs from
 * http(s) URLs only. */
(function () {
  'use strict';

  var TOKEN_KEY = 'frontdesk.agentToken';
  var NOTIFY_KEY = 'frontdesk.notifications';
  var SOUND_KEY = 'frontdesk.sound';
  var PAGE = 50;                 // conversations per `list` page
  var SEARCH_DEBOUNCE = 300;     // ms after the last keystroke
  var TYPING_RENEW = 2000;       // renew our typing state at most this often
  var TYPING_IDLE = 4000;        // stop it after this long without a keystroke
  var TYPING_EXPIRY = 6000;      // others' typing ends without a renewal
  var $ = function (id) { return document.getElementById(id); };
  var languageChanged = []; // renderers of texts built in code, redone on a language change

  var S = {
    ws: null, token: null, ready: false, attempt: 0, retry: null,
    agent: null, inboxes: [], agents: [],
    convs: new Map(),          // id -> SUMMARY, every one this page heard of
    // The list: the filter, the ids it shows, the cursor of the next page.
    filter: { status: 'open', assignee: null, query: '' },
    view: new Set(), hits: new Set(), next: null, bottom: 0, listGen: 0, listQ: [], listLoading: false,
    moreLoading: false, listLocal: false,
    rows: new Map(),           // id -> row (its elements), for update in place
    openId: null,
    thread: new Map(),         // message id -> element, for the open conversation
    pending: new Map(),        // client_msg_id -> {conversation_id, text, el}
    paging: false, hasMore: false, conn: null, signinError: null,
    phase: 'probe',            // probe (trying the cookie), invite, signin, app
    everReady: false,          // signed in at least once since the last sign-in form
    marked: new Map(),         // conversation id -> the last seq sent in mark_read
    typing: new Map(),         // "conv|who" -> {conv, who, name, timer}
    myTyping: { conv: null, sentAt: 0, idle: null },
    titleCount: 0,
    lookupEmail: null, dialogBusy: false,
    cf: { inbox: null, data: null, saving: false, dirty: false },
    team: null,                // the last `team` frame (admins)
    admin: { busy: null }      // the admin change waiting for its answer, and its dialog
  };

  // ---- languages ------------------------------------------------------------------------
  // Every text of the page, English and German. {name} marks a value put in. The texts
  // an admin typed for an inbox (prompt, away message, greeting) are never translated.
  var STRINGS = {
    en: {
      'lang.en': 'English', 'lang.de': 'Deutsch', 'lang.auto': 'Browser language',
      'doc.title': 'Inbox · frontdesk',
      'signin.title': 'Sign in to the inbox',
      'signin.intro': 'Paste your agent token or open your invite link. This browser then stays signed in for 30 days, until you sign out.',
      'signin.token': 'Agent token', 'signin.submit': 'Sign in', 'signin.checking': 'Signing in…',
      'signin.bad': 'That token was not accepted. Check it and try again.',
      'signin.badInvite': 'This invite link is not valid any more. Ask an admin for a new one.',
      'signin.ended': 'You were signed out: your sign-in ended or your access was removed. Sign in again.',
      'signin.limited': 'Too many sign-in attempts. Wait a minute and try again.',
      'signin.unreachable': 'Could not reach the server. Is it running?',
      'signin.refused': 'The server refused the sign-in from this page. Open the inbox from the server\u2019s own address.',
      'signout': 'Sign out',
      'app.heading': 'frontdesk inbox', 'nav.sections': 'Sections', 'nav.inbox': 'Inbox', 'nav.settings': 'Settings',
      'conn.connecting': 'Connecting…', 'conn.reconnecting': 'Reconnecting…', 'conn.online': 'Connected',
      'conn.offline': 'Offline — reconnecting…', 'conn.notConnected': 'Not connected — reconnecting…',
      'role.admin': 'Admin', 'role.agent': 'Agent',
      'list.title': 'Conversations', 'list.count': 'Conversations shown', 'list.more': 'More load as you scroll',
      'filter.status': 'Filter by status', 'filter.assignee': 'Filter by assignee',
      'filter.mine': 'Mine', 'filter.unassigned': 'Unassigned', 'filter.all': 'All',
      'status.open': 'Open', 'status.pending': 'Pending', 'status.resolved': 'Resolved',
      'search.label': 'Search conversations', 'search.placeholder': 'Search name, email or message',
      'empty.loading': 'Loading…', 'empty.query': 'Nothing matches \u201c{q}\u201d',
      'empty.queryText': 'Search looks in names, emails and messages.',
      'empty.open': 'No open conversations', 'empty.pending': 'No pending conversations', 'empty.resolved': 'No resolved conversations',
      'empty.openMine': 'No open conversations assigned to you', 'empty.pendingMine': 'No pending conversations assigned to you',
      'empty.resolvedMine': 'No resolved conversations assigned to you',
      'empty.openNone': 'No open conversations without an assignee', 'empty.pendingNone': 'No pending conversations without an assignee',
      'empty.resolvedNone': 'No resolved conversations without an assignee',
      'empty.text': 'When a visitor writes in the chat widget, the conversation shows up here live.',
      'alerts': 'Alerts', 'notify.enable': 'Enable notifications', 'notify.on': 'Notifications on', 'notify.off': 'Notifications off',
      'notify.blocked': 'Notifications blocked', 'notify.blockedHint': 'Allow notifications for this site in the browser settings',
      'notify.newConversation': 'New conversation', 'sound.on': 'Sound on', 'sound.off': 'Sound off',
      'row.unread': ' unread', 'row.online': 'Online', 'row.offline': 'Offline', 'row.typing': 'Typing…',
      'row.agentPrefix': '{name}: ', 'row.agent': 'Agent: ', 'row.auto': 'Auto: ', 'row.noMessages': 'No messages yet',
      'row.you': 'You', 'row.unassigned': 'Unassigned',
      'visitor.unknown': 'Unknown visitor', 'visitor.default': 'Visitor',
      'thread.label': 'Conversation', 'thread.none': 'Pick a conversation', 'thread.noneText': 'Its messages show here, and you can reply right away.',
      'thread.back': 'Back to conversations', 'thread.details': 'Details', 'thread.status': 'Status', 'thread.assignee': 'Assignee',
      'thread.assignMe': 'Assign to me', 'thread.messages': 'Messages', 'thread.loadEarlier': 'Load earlier messages',
      'thread.onlineNow': 'Online now', 'thread.offline': 'Offline', 'thread.youSuffix': '{name} (you)',
      'thread.automatic': 'Automatic message', 'thread.sending': 'Sending…', 'thread.waiting': 'Waiting for connection…',
      'thread.seen': 'Seen', 'thread.notSent': 'Not sent: {reason}',
      'day.today': 'Today', 'day.yesterday': 'Yesterday',
      'typing.visitor': 'Visitor is typing…', 'typing.agent': '{name} is typing…', 'typing.anAgent': 'An agent',
      'reply.placeholder': 'Write a reply…', 'reply.hint': 'Enter sends, Shift+Enter starts a new line', 'reply.label': 'Reply', 'reply.send': 'Send',
      'details.label': 'Visitor details', 'details.none': 'Visitor details show here.', 'details.close': 'Close details',
      'details.contact': 'Contact', 'details.link': 'Link to a contact', 'details.change': 'Change contact',
      'details.notLinked': 'This visitor is not linked to a contact yet.', 'details.conversation': 'Conversation',
      'details.inbox': 'Inbox', 'details.started': 'Started', 'details.updated': 'Last activity', 'details.page': 'Page',
      'details.visitorId': 'Visitor id', 'details.name': 'Name', 'details.source': 'Source', 'details.since': 'Since',
      'details.sourceCapture': 'Left their email in the chat', 'details.sourceAgent': 'Added by an agent',
      'close': 'Close', 'cancel': 'Cancel', 'save': 'Save changes', 'email': 'Email',
      'assign.intro': 'Link this visitor to a contact. Type their email: if we know them, confirm; if not, create the contact.',
      'assign.emailPlaceholder': 'name@example.com', 'assign.lookup': 'Look up',
      'assign.found': 'This contact exists. Link the visitor to them?', 'assign.confirm': 'Yes, link',
      'assign.new': 'No contact has this email yet. Create one and link the visitor to it:',
      'assign.first': 'First name', 'assign.last': 'Last name', 'assign.create': 'Create contact',
      'assign.emailFirst': 'Type the visitor\u2019s email first.', 'assign.linked': 'Visitor linked to {name}',
      'settings.general': 'This browser', 'settings.generalText': 'How the inbox looks to you here. Visitors see the widget in their own language.',
      'settings.language': 'Language',
      'cf.title': 'Chatflow', 'cf.intro': 'When the widget asks visitors for their email, and what it says while nobody is around.',
      'cf.capture': 'Email capture', 'cf.when': 'Ask for the visitor\u2019s email', 'cf.when.first': 'Right after their first message',
      'cf.when.noReply': 'When nobody has replied in time', 'cf.when.never': 'Never', 'cf.delay': 'Wait for a reply (seconds)',
      'cf.message': 'Prompt text',
      'cf.messagePlaceholder': 'Empty: the built-in text, \u201cLeave your email and we\u2019ll get back to you there if you\u2019re gone when we reply.\u201d',
      'cf.away': 'Away', 'cf.awayMode': 'Show the away message', 'cf.away.off': 'Off', 'cf.away.always': 'Always',
      'cf.away.noAgents': 'When no agent is online', 'cf.awayMessage': 'Away message',
      'cf.awayPlaceholder': 'Empty: the built-in text, \u201cWe\u2019re away right now, but we\u2019ll get back to you as soon as we can.\u201d',
      'cf.followup': 'Follow-up', 'cf.followupEnabled': 'Email visitors the replies they missed after leaving the chat',
      'cf.followupDelay': 'Wait before emailing (seconds)', 'cf.loading': 'Loading…', 'cf.saving': 'Saving…', 'cf.saved': 'Saved',
      'cf.delayRange': 'Enter a whole number of seconds from 1 to 86400.', 'cf.fixFields': 'Please correct the marked fields.',
      'cf.unsaved': 'You have unsaved changes in the chatflow. Save them, or they are lost when you leave.',
      'team.title': 'Team', 'team.intro': 'Who can sign in to this inbox, what they may do and which inboxes they see.',
      'team.add': 'Add agent', 'team.addTitle': 'Add an agent', 'team.editTitle': 'Edit {name}', 'team.create': 'Add and make invite link',
      'team.name': 'Name', 'team.displayName': 'Display name visitors see', 'team.displayPlaceholder': 'e.g. Ann from Acme Bikes',
      'team.displayHint': 'Leave empty to show the name.', 'team.role': 'Role', 'team.inboxes': 'Inboxes',
      'team.edit': 'Edit', 'team.invite': 'New invite link', 'team.revoke': 'Revoke', 'team.revoked': 'Revoked', 'team.you': 'you',
      'team.seenAs': 'Visitors see \u201c{name}\u201d', 'team.noInboxes': 'No inbox',
      'team.revokeTitle': 'Revoke {name}?', 'team.revokeText': '{name} is signed out everywhere at once and can no longer sign in. Their conversations stay.',
      'team.revokeOk': 'Revoke access', 'team.nameNeeded': 'Enter a name of 1 to 100 characters.',
      'team.editFor': 'Edit {name}', 'team.inviteFor': 'New invite link for {name}', 'team.revokeFor': 'Revoke {name}',
      'team.revokedToast': '{name} can no longer sign in.', 'team.saved': 'Saved',
      'inboxes.editFor': 'Edit inbox {name}', 'inboxes.members': '{count} members', 'inboxes.created': 'Inbox {name} created',
      'invite.title': 'Invite link for {name}', 'invite.note': 'Send this link to them. It signs them in once; it will not be shown again. If it gets lost, make a new invite link.',
      'invite.link': 'Invite link', 'invite.copy': 'Copy link', 'invite.copied': 'Copied', 'invite.copyFailed': 'Select the link and copy it by hand.',
      'inboxes.title': 'Inboxes', 'inboxes.intro': 'Each inbox has its own widget: the sites allowed to embed it, its title, colour and greeting.',
      'inboxes.add': 'Create inbox', 'inboxes.addTitle': 'Create an inbox', 'inboxes.editTitle': 'Edit inbox {name}',
      'inboxes.create': 'Create inbox', 'inboxes.key': 'Key',
      'inboxes.keyHint': 'Letters, digits, - and _. The widget names it in data-inbox; it cannot be changed later.',
      'inboxes.origins': 'Sites allowed to embed the widget', 'inboxes.originsHint': 'One origin per line. Leave empty to allow every site.',
      'inboxes.widget': 'Widget', 'inboxes.widgetTitle': 'Title', 'inboxes.color': 'Colour', 'inboxes.colorPicker': 'Pick a colour',
      'inboxes.greeting': 'Greeting', 'inboxes.defaultPlaceholder': 'Empty: the widget\u2019s default',
      'inboxes.anySite': 'Every site', 'inboxes.edit': 'Edit', 'inboxes.keyBad': 'Use 1 to 64 letters, digits, - or _.',
      'inboxes.originBad': 'Each line must be an origin such as https://shop.example.com (no path).',
      'inboxes.colorBad': 'Use a colour such as #4f46e5.', 'inboxes.tooMany': 'At most 50 origins.',
      'err.bad_frame': 'The server did not accept this. Check the values and try again.',
      'err.bad_frame.inbox': 'The inbox was not accepted: check the key and the origins. The key may already be in use.',
      'err.bad_frame.agent': 'The agent was not accepted: check the name (1 to 100 characters) and the inboxes.',
      'err.bad_frame.chatflow': 'The chatflow was not accepted: waiting times must be 1 to 86400 seconds, texts at most 1000 characters.',
      'err.invalid_name.agent': 'Names must be 1 to 100 characters, without control characters.',
      'err.not_found.agent': 'That agent or one of the inboxes does not exist (any more).',
      'err.not_found.inbox': 'That inbox does not exist (any more).',
      'err.bad_frame.inboxEdit': 'The inbox was not accepted: check the origins (like https://shop.example.com), the title (at most 60 characters), the greeting (at most 500) and the colour (like #4f46e5).',
      'err.not_authenticated': 'You are not signed in.', 'err.invalid_email': 'That email address does not look valid.',
      'err.invalid_name': 'Please enter a first and a last name.', 'err.message_too_long': 'The message is too long (at most 4000 characters).',
      'err.empty_message': 'The message is empty.', 'err.rate_limited': 'Too many requests at once. Wait a moment and try again.',
      'err.not_found': 'That conversation, agent or inbox is not available.', 'err.forbidden': 'You may not do this. Only admins can, and nobody can revoke or demote themselves.',
      'err.contact_not_found': 'No contact has this email any more.',
      'err.contact_exists': 'A contact with this email already exists. Look it up again to link it.',
      'err.internal': 'The server had a problem. Please try again.', 'err.other': 'Something went wrong ({code}). Please try again.'
    },
    de: {
      'lang.en': 'English', 'lang.de': 'Deutsch', 'lang.auto': 'Sprache des Browsers',
      'doc.title': 'Posteingang · frontdesk',
      'signin.title': 'Beim Posteingang anmelden',
      'signin.intro': 'Füge deinen Agent-Token ein oder öffne deinen Einladungslink. Dieser Browser bleibt dann 30 Tage angemeldet, bis du dich abmeldest.',
      'signin.token': 'Agent-Token', 'signin.submit': 'Anmelden', 'signin.checking': 'Anmeldung läuft…',
      'signin.bad': 'Dieser Token wurde nicht angenommen. Prüfe ihn und versuche es noch einmal.',
      'signin.badInvite': 'Dieser Einladungslink gilt nicht mehr. Bitte einen Admin um einen neuen.',
      'signin.ended': 'Du wurdest abgemeldet: Deine Anmeldung ist abgelaufen oder dein Zugang wurde entfernt. Melde dich neu an.',
      'signin.limited': 'Zu viele Anmeldeversuche. Warte eine Minute und versuche es dann noch einmal.',
      'signin.unreachable': 'Der Server ist nicht erreichbar. Läuft er?',
      'signin.refused': 'Der Server hat die Anmeldung von dieser Seite abgelehnt. Öffne den Posteingang über die Adresse des Servers.',
      'signout': 'Abmelden',
      'app.heading': 'frontdesk-Posteingang', 'nav.sections': 'Bereiche', 'nav.inbox': 'Posteingang', 'nav.settings': 'Einstellungen',
      'conn.connecting': 'Verbinde…', 'conn.reconnecting': 'Verbinde neu…', 'conn.online': 'Verbunden',
      'conn.offline': 'Offline – verbinde neu…', 'conn.notConnected': 'Nicht verbunden – verbinde neu…',
      'role.admin': 'Admin', 'role.agent': 'Agent',
      'list.title': 'Unterhaltungen', 'list.count': 'Angezeigte Unterhaltungen', 'list.more': 'Beim Scrollen werden weitere geladen',
      'filter.status': 'Nach Status filtern', 'filter.assignee': 'Nach Zuständigen filtern',
      'filter.mine': 'Meine', 'filter.unassigned': 'Nicht zugewiesen', 'filter.all': 'Alle',
      'status.open': 'Offen', 'status.pending': 'Wartend', 'status.resolved': 'Erledigt',
      'search.label': 'Unterhaltungen durchsuchen', 'search.placeholder': 'Name, E-Mail oder Nachricht suchen',
      'empty.loading': 'Lädt…', 'empty.query': 'Nichts passt zu \u201e{q}\u201c',
      'empty.queryText': 'Die Suche durchsucht Namen, E-Mail-Adressen und Nachrichten.',
      'empty.open': 'Keine offenen Unterhaltungen', 'empty.pending': 'Keine wartenden Unterhaltungen', 'empty.resolved': 'Keine erledigten Unterhaltungen',
      'empty.openMine': 'Keine offenen Unterhaltungen, die dir zugewiesen sind', 'empty.pendingMine': 'Keine wartenden Unterhaltungen, die dir zugewiesen sind',
      'empty.resolvedMine': 'Keine erledigten Unterhaltungen, die dir zugewiesen sind',
      'empty.openNone': 'Keine offenen Unterhaltungen ohne Zuständige', 'empty.pendingNone': 'Keine wartenden Unterhaltungen ohne Zuständige',
      'empty.resolvedNone': 'Keine erledigten Unterhaltungen ohne Zuständige',
      'empty.text': 'Sobald jemand im Chat-Widget schreibt, erscheint die Unterhaltung hier live.',
      'alerts': 'Hinweise', 'notify.enable': 'Benachrichtigungen einschalten', 'notify.on': 'Benachrichtigungen an', 'notify.off': 'Benachrichtigungen aus',
      'notify.blocked': 'Benachrichtigungen blockiert', 'notify.blockedHint': 'Erlaube Benachrichtigungen für diese Seite in den Browser-Einstellungen',
      'notify.newConversation': 'Neue Unterhaltung', 'sound.on': 'Ton an', 'sound.off': 'Ton aus',
      'row.unread': ' ungelesen', 'row.online': 'Online', 'row.offline': 'Offline', 'row.typing': 'Schreibt…',
      'row.agentPrefix': '{name}: ', 'row.agent': 'Agent: ', 'row.auto': 'Automatisch: ', 'row.noMessages': 'Noch keine Nachrichten',
      'row.you': 'Du', 'row.unassigned': 'Nicht zugewiesen',
      'visitor.unknown': 'Unbekannter Besucher', 'visitor.default': 'Besucher',
      'thread.label': 'Unterhaltung', 'thread.none': 'Wähle eine Unterhaltung', 'thread.noneText': 'Ihre Nachrichten erscheinen hier, und du kannst sofort antworten.',
      'thread.back': 'Zurück zu den Unterhaltungen', 'thread.details': 'Details', 'thread.status': 'Status', 'thread.assignee': 'Zuständig',
      'thread.assignMe': 'Mir zuweisen', 'thread.messages': 'Nachrichten', 'thread.loadEarlier': 'Frühere Nachrichten laden',
      'thread.onlineNow': 'Jetzt online', 'thread.offline': 'Offline', 'thread.youSuffix': '{name} (du)',
      'thread.automatic': 'Automatische Nachricht', 'thread.sending': 'Wird gesendet…', 'thread.waiting': 'Wartet auf Verbindung…',
      'thread.seen': 'Gesehen', 'thread.notSent': 'Nicht gesendet: {reason}',
      'day.today': 'Heute', 'day.yesterday': 'Gestern',
      'typing.visitor': 'Besucher schreibt…', 'typing.agent': '{name} schreibt…', 'typing.anAgent': 'Ein Agent',
      'reply.placeholder': 'Antwort schreiben…', 'reply.hint': 'Enter sendet, Umschalt+Enter beginnt eine neue Zeile', 'reply.label': 'Antwort', 'reply.send': 'Senden',
      'details.label': 'Angaben zum Besucher', 'details.none': 'Hier erscheinen Angaben zum Besucher.', 'details.close': 'Angaben schließen',
      'details.contact': 'Kontakt', 'details.link': 'Mit einem Kontakt verknüpfen', 'details.change': 'Kontakt ändern',
      'details.notLinked': 'Dieser Besucher ist noch mit keinem Kontakt verknüpft.', 'details.conversation': 'Unterhaltung',
      'details.inbox': 'Posteingang', 'details.started': 'Begonnen', 'details.updated': 'Zuletzt aktiv', 'details.page': 'Seite',
      'details.visitorId': 'Besucher-ID', 'details.name': 'Name', 'details.source': 'Herkunft', 'details.since': 'Seit',
      'details.sourceCapture': 'Hat die E-Mail-Adresse im Chat hinterlassen', 'details.sourceAgent': 'Von einem Agent angelegt',
      'close': 'Schließen', 'cancel': 'Abbrechen', 'save': 'Änderungen speichern', 'email': 'E-Mail',
      'assign.intro': 'Verknüpfe diesen Besucher mit einem Kontakt. Gib die E-Mail-Adresse ein: Kennen wir sie, bestätige; sonst lege den Kontakt an.',
      'assign.emailPlaceholder': 'name@beispiel.de', 'assign.lookup': 'Suchen',
      'assign.found': 'Diesen Kontakt gibt es. Den Besucher mit ihm verknüpfen?', 'assign.confirm': 'Ja, verknüpfen',
      'assign.new': 'Noch kein Kontakt hat diese E-Mail-Adresse. Lege einen an und verknüpfe den Besucher damit:',
      'assign.first': 'Vorname', 'assign.last': 'Nachname', 'assign.create': 'Kontakt anlegen',
      'assign.emailFirst': 'Gib zuerst die E-Mail-Adresse des Besuchers ein.', 'assign.linked': 'Besucher mit {name} verknüpft',
      'settings.general': 'Dieser Browser', 'settings.generalText': 'Wie der Posteingang hier für dich aussieht. Besucher sehen das Widget in ihrer eigenen Sprache.',
      'settings.language': 'Sprache',
      'cf.title': 'Chatablauf', 'cf.intro': 'Wann das Widget Besucher nach ihrer E-Mail-Adresse fragt und was es sagt, wenn niemand da ist.',
      'cf.capture': 'E-Mail-Abfrage', 'cf.when': 'Nach der E-Mail-Adresse fragen', 'cf.when.first': 'Gleich nach der ersten Nachricht',
      'cf.when.noReply': 'Wenn niemand rechtzeitig geantwortet hat', 'cf.when.never': 'Nie', 'cf.delay': 'Auf eine Antwort warten (Sekunden)',
      'cf.message': 'Text der Abfrage',
      'cf.messagePlaceholder': 'Leer: der eingebaute Text („Leave your email and we’ll get back to you there if you’re gone when we reply.“)',
      'cf.away': 'Abwesenheit', 'cf.awayMode': 'Abwesenheitsnachricht zeigen', 'cf.away.off': 'Aus', 'cf.away.always': 'Immer',
      'cf.away.noAgents': 'Wenn kein Agent online ist', 'cf.awayMessage': 'Abwesenheitsnachricht',
      'cf.awayPlaceholder': 'Leer: der eingebaute Text („We’re away right now, but we’ll get back to you as soon as we can.“)',
      'cf.followup': 'Nachfassen', 'cf.followupEnabled': 'Besuchern die verpassten Antworten per E-Mail schicken, wenn sie den Chat verlassen haben',
      'cf.followupDelay': 'Warten vor der E-Mail (Sekunden)', 'cf.loading': 'Lädt…', 'cf.saving': 'Speichert…', 'cf.saved': 'Gespeichert',
      'cf.delayRange': 'Gib eine ganze Zahl von 1 bis 86400 Sekunden ein.', 'cf.fixFields': 'Bitte korrigiere die markierten Felder.',
      'cf.unsaved': 'Der Chatablauf hat ungespeicherte Änderungen. Speichere sie, sonst gehen sie beim Verlassen verloren.',
      'team.title': 'Team', 'team.intro': 'Wer sich beim Posteingang anmelden darf, was er darf und welche Posteingänge er sieht.',
      'team.add': 'Agent hinzufügen', 'team.addTitle': 'Agent hinzufügen', 'team.editTitle': '{name} bearbeiten', 'team.create': 'Hinzufügen und Einladungslink erstellen',
      'team.name': 'Name', 'team.displayName': 'Anzeigename für Besucher', 'team.displayPlaceholder': 'z. B. Anna von Acme Bikes',
      'team.displayHint': 'Leer lassen, um den Namen zu zeigen.', 'team.role': 'Rolle', 'team.inboxes': 'Posteingänge',
      'team.edit': 'Bearbeiten', 'team.invite': 'Neuer Einladungslink', 'team.revoke': 'Sperren', 'team.revoked': 'Gesperrt', 'team.you': 'du',
      'team.seenAs': 'Besucher sehen \u201e{name}\u201c', 'team.noInboxes': 'Kein Posteingang',
      'team.revokeTitle': '{name} sperren?', 'team.revokeText': '{name} wird sofort überall abgemeldet und kann sich nicht mehr anmelden. Die Unterhaltungen bleiben erhalten.',
      'team.revokeOk': 'Zugang sperren', 'team.nameNeeded': 'Gib einen Namen mit 1 bis 100 Zeichen ein.',
      'team.editFor': '{name} bearbeiten', 'team.inviteFor': 'Neuer Einladungslink für {name}', 'team.revokeFor': '{name} sperren',
      'team.revokedToast': '{name} kann sich nicht mehr anmelden.', 'team.saved': 'Gespeichert',
      'inboxes.editFor': 'Posteingang {name} bearbeiten', 'inboxes.members': '{count} Mitglieder', 'inboxes.created': 'Posteingang {name} angelegt',
      'invite.title': 'Einladungslink für {name}', 'invite.note': 'Schicke diesen Link an die Person. Er meldet sie einmal an; er wird nicht noch einmal angezeigt. Geht er verloren, erstelle einen neuen Einladungslink.',
      'invite.link': 'Einladungslink', 'invite.copy': 'Link kopieren', 'invite.copied': 'Kopiert', 'invite.copyFailed': 'Markiere den Link und kopiere ihn von Hand.',
      'inboxes.title': 'Posteingänge', 'inboxes.intro': 'Jeder Posteingang hat sein eigenes Widget: die Seiten, die es einbinden dürfen, Titel, Farbe und Begrüßung.',
      'inboxes.add': 'Posteingang anlegen', 'inboxes.addTitle': 'Posteingang anlegen', 'inboxes.editTitle': 'Posteingang {name} bearbeiten',
      'inboxes.create': 'Posteingang anlegen', 'inboxes.key': 'Schlüssel',
      'inboxes.keyHint': 'Buchstaben, Ziffern, - und _. Das Widget nennt ihn in data-inbox; er lässt sich später nicht ändern.',
      'inboxes.origins': 'Seiten, die das Widget einbinden dürfen', 'inboxes.originsHint': 'Ein Origin pro Zeile. Leer lassen, um jede Seite zu erlauben.',
      'inboxes.widget': 'Widget', 'inboxes.widgetTitle': 'Titel', 'inboxes.color': 'Farbe', 'inboxes.colorPicker': 'Farbe wählen',
      'inboxes.greeting': 'Begrüßung', 'inboxes.defaultPlaceholder': 'Leer: Standard des Widgets',
      'inboxes.anySite': 'Jede Seite', 'inboxes.edit': 'Bearbeiten', 'inboxes.keyBad': 'Verwende 1 bis 64 Buchstaben, Ziffern, - oder _.',
      'inboxes.originBad': 'Jede Zeile muss ein Origin wie https://shop.example.com sein (ohne Pfad).',
      'inboxes.colorBad': 'Verwende eine Farbe wie #4f46e5.', 'inboxes.tooMany': 'Höchstens 50 Origins.',
      'err.bad_frame': 'Der Server hat das nicht angenommen. Prüfe die Angaben und versuche es noch einmal.',
      'err.bad_frame.inbox': 'Der Posteingang wurde nicht angenommen: Prüfe Schlüssel und Origins. Vielleicht ist der Schlüssel schon vergeben.',
      'err.bad_frame.agent': 'Der Agent wurde nicht angenommen: Prüfe den Namen (1 bis 100 Zeichen) und die Posteingänge.',
      'err.bad_frame.chatflow': 'Der Chatablauf wurde nicht angenommen: Wartezeiten müssen 1 bis 86400 Sekunden sein, Texte höchstens 1000 Zeichen.',
      'err.invalid_name.agent': 'Namen müssen 1 bis 100 Zeichen lang sein, ohne Steuerzeichen.',
      'err.not_found.agent': 'Diesen Agent oder einen der Posteingänge gibt es (nicht mehr).',
      'err.not_found.inbox': 'Diesen Posteingang gibt es (nicht mehr).',
      'err.bad_frame.inboxEdit': 'Der Posteingang wurde nicht angenommen: Prüfe die Origins (wie https://shop.example.com), den Titel (höchstens 60 Zeichen), die Begrüßung (höchstens 500) und die Farbe (wie #4f46e5).',
      'err.not_authenticated': 'Du bist nicht angemeldet.', 'err.invalid_email': 'Diese E-Mail-Adresse sieht nicht gültig aus.',
      'err.invalid_name': 'Bitte gib einen Vor- und einen Nachnamen ein.', 'err.message_too_long': 'Die Nachricht ist zu lang (höchstens 4000 Zeichen).',
      'err.empty_message': 'Die Nachricht ist leer.', 'err.rate_limited': 'Zu viele Anfragen auf einmal. Warte kurz und versuche es noch einmal.',
      'err.not_found': 'Diese Unterhaltung, dieser Agent oder Posteingang ist nicht verfügbar.', 'err.forbidden': 'Das darfst du nicht. Nur Admins dürfen das, und niemand kann sich selbst sperren oder herabstufen.',
      'err.contact_not_found': 'Kein Kontakt hat diese E-Mail-Adresse mehr.',
      'err.contact_exists': 'Ein Kontakt mit dieser E-Mail-Adresse existiert schon. Suche ihn noch einmal, um ihn zu verknüpfen.',
      'err.internal': 'Der Server hatte ein Problem. Bitte versuche es noch einmal.', 'err.other': 'Etwas ist schiefgegangen ({code}). Bitte versuche es noch einmal.'
    }
  };

  // ---- helpers ---------------------------------------------------------------
  function h(tag, attrs, kids) {
    var el = document.createElement(tag);
    for (var k in attrs || {}) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') el.textContent = v;
      else if (k === 'class') el.className = v;
      else el.setAttribute(k, v === true ? '' : v);
    }
    (kids || []).forEach(function (c) { if (c) el.appendChild(c); });
    return el;
  }
  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    var x = Array.prototype.map.call(b, function (n) { return (n + 256).toString(16).slice(1); }).join('');
    return [x.slice(0, 8), x.slice(8, 12), x.slice(12, 16), x.slice(16, 20), x.slice(20)].join('-');
  }
  function connected() { return !!(S.ws && S.ws.readyState === 1 && S.ready); }
  function send(frame) {
    if (connected()) { S.ws.send(JSON.stringify(frame)); return true; }
    toast(t('conn.notConnected'), true);
    return false;
  }
  /** For frames nobody waits on (typing, mark_read): dropped while offline. */
  function sendQuiet(frame) {
    if (!connected()) return false;
    S.ws.send(JSON.stringify(frame));
    return true;
  }
  function setText(el, text) { if (el.textContent !== text) el.textContent = text; }
  function setAttr(el, name, value) {
    if (value === null) { if (el.hasAttribute(name)) el.removeAttribute(name); }
    else if (el.getAttribute(name) !== value) el.setAttribute(name, value);
  }
  function pref(key) { try { return localStorage.getItem(key); } catch (e) { return null; } }
  /** Remembers a preference in this browser; null forgets it. */
  function setPref(key, v) {
    try { if (v === null) localStorage.removeItem(key); else localStorage.setItem(key, v); } catch (e) { /* ignore */ }
  }
  function initials(label) {
    if (!label || label === UNKNOWN) return '?';
    var parts = label.replace(/@.*/, '').split(/[\s._-]+/).filter(Boolean);
    return ((parts[0] || '?')[0] + (parts.length > 1 ? parts[parts.length - 1][0] : '')).toUpperCase();
  }
  function hue(s) {
    var n = 0;
    for (var i = 0; i < (s || '').length; i++) n = (n * 31 + s.charCodeAt(i)) % 360;
    return n;
  }
  function paintAvatar(el, label, seed) {
    setText(el.firstChild && el.firstChild.nodeType === 3 ? el.firstChild : el, initials(label));
    el.style.background = 'hsl(' + hue(seed || label) + ' 55% 88%)';
    el.style.color = 'hsl(' + hue(seed || label) + ' 45% 30%)';
  }
  var LANG_KEY = 'frontdesk.lang';
  var UNKNOWN = 'Unknown visitor'; // the label the server gives a visitor nobody named
  /** The language chosen in settings, else the browser's: German for de*, else English. */
  function pickLang() {
    var chosen = pref(LANG_KEY);
    if (chosen && STRINGS[chosen]) return chosen;
    var nav = (navigator.languages && navigator.languages[0]) || navigator.language || 'en';
    return /^de\b/i.test(nav) ? 'de' : 'en';
  }
  var LANG = 'en';
  /** The text for `key` in the page's language, with {name}s filled from `vars`. */
  function t(key, vars) {
    var s = STRINGS[LANG][key];
    if (s === undefined) s = STRINGS.en[key];
    if (s === undefined) return key;
    return vars ? s.replace(/\{(\w+)\}/g, function (m, k) { return vars[k] === undefined ? m : String(vars[k]); }) : s;
  }
  /** Puts the language into the page's fixed texts (data-t, data-ta) and <html lang>. */
  function translatePage() {
    document.documentElement.lang = LANG;
    document.querySelectorAll('[data-t]').forEach(function (el) { setText(el, t(el.getAttribute('data-t'))); });
    document.querySelectorAll('[data-ta]').forEach(function (el) {
      el.getAttribute('data-ta').split(',').forEach(function (pair) {
        var kv = pair.split(':');
        setAttr(el, kv[0], t(kv[1]));
      });
    });
    document.querySelectorAll('.lang-select').forEach(function (sel) {
      sel.textContent = '';
      [['', 'lang.auto'], ['en', 'lang.en'], ['de', 'lang.de']].forEach(function (o) {
        sel.appendChild(h('option', { value: o[0], lang: o[0] || null, text: t(o[1]) }));
      });
      sel.value = pref(LANG_KEY) || '';
    });
  }
  var formats = {};
  function fmt(name, opts) {
    var k = LANG + '|' + name;
    if (!formats[k]) formats[k] = new Intl.DateTimeFormat(LANG, opts);
    return formats[k];
  }
  function sameDay(a, b) { return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate(); }
  function daysAgo(at) {
    var d = new Date(at), today = new Date();
    var start = new Date(today.getFullYear(), today.getMonth(), today.getDate());
    var day = new Date(d.getFullYear(), d.getMonth(), d.getDate());
    return Math.round((start - day) / 86400000);
  }
  function clock(at) { return fmt('time', { hour: 'numeric', minute: '2-digit' }).format(new Date(at)); }
  /** A list row's time: the time today, else the date (with the year when not this one). */
  function fmtTime(at) {
    if (!at) return '';
    var d = new Date(at);
    if (sameDay(d, new Date())) return clock(at);
    if (d.getFullYear() === new Date().getFullYear()) return fmt('date', { day: 'numeric', month: 'short' }).format(d);
    return fmt('dateYear', { day: 'numeric', month: 'short', year: 'numeric' }).format(d);
  }
  function fmtFull(at) {
    return at ? fmt('full', { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(at)) : '—';
  }
  /** A message's time: the time today, date and time before. */
  function fmtMsgTime(at) { return !at || daysAgo(at) === 0 ? clock(at || Date.now()) : fmtFull(at); }
  /** The day separator's text: Today, Yesterday, else the date. */
  function dayLabel(at) {
    var n = daysAgo(at);
    if (n === 0) return t('day.today');
    if (n === 1) return t('day.yesterday');
    var d = new Date(at);
    return d.getFullYear() === new Date().getFullYear()
      ? fmt('day', { weekday: 'long', day: 'numeric', month: 'long' }).format(d)
      : fmt('dayYear', { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' }).format(d);
  }
  function fullName(c) { return c ? [c.first_name, c.last_name].filter(Boolean).join(' ') : ''; }
  /** The server's label; its "Unknown visitor" (not a name anyone typed) in the reader's language. */
  function labelOf(c) {
    var l = c && c.visitor && c.visitor.label;
    return !l || l === UNKNOWN ? t('visitor.unknown') : l;
  }
  function statusOf(c) { return (c && c.status) || 'open'; }
  function agentName(a) { return (a && (a.name || a.display_name)) || ''; }
  function isAdmin() { return !!(S.agent && S.agent.role === 'admin'); }
  function isMe(a) { return !!(a && S.agent && a.id === S.agent.id); }
  var toastTimer = null;
  function toast(text, bad) {
    var el = $('toast');
    el.textContent = text;
    el.className = 'toast' + (bad ? ' bad' : '');
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { el.hidden = true; }, 3500);
  }
  function setConn(state, key) {
    S.conn = key;
    $('conn').setAttribute('data-state', state);
    setText($('conn-text'), t(key));
  }
  /** The agent is looking at this tab: it is visible and has the focus. */
  function attentive() { return document.visibilityState === 'visible' && document.hasFocus(); }

  // ---- sign in / connection ----------------------------------------------------
  /** The sign-in form, with the text of `errorKey` (a string-table key) if given. */
  function showSignin(errorKey) {
    S.phase = 'signin';
    $('app').hidden = true;
    $('signin').hidden = false;
    $('signin-submit').disabled = false;
    S.signinError = errorKey || null;
    renderSigninError();
    // Not while the agent is choosing a language there.
    if (!(document.activeElement && document.activeElement.classList.contains('lang-select'))) $('signin-token').focus();
  }
  function renderSigninError() {
    var e = $('signin-error');
    e.hidden = !S.signinError;
    setText(e, S.signinError ? t(S.signinError) : '');
  }
  $('signin-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var token = $('signin-token').value.trim();
    if (token) startSession(token, false);
  });

  /** Trades a token (an agent's, or an invite's) for the session cookie, then connects
   * with it. The token is never kept: not in storage, not in the URL. A server that has
   * no sessions (404) gets the token in `auth` instead, for this page only. */
  function startSession(token, invite) {
    clearTimeout(S.retry);
    S.posting = true;
    $('signin-submit').disabled = true;
    S.signinError = null; renderSigninError();
    var done = function (errorKey) {
      S.posting = false;
      $('signin-token').value = '';
      if (errorKey) showSignin(errorKey);
    };
    fetch('/api/session', {
      method: 'POST', credentials: 'same-origin', cache: 'no-store',
      headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ token: token })
    }).then(function (r) {
      if (r.ok) { S.token = null; done(null); S.attempt = 0; connect(); return; }
      if (r.status === 404 || r.status === 405) { S.token = token; done(null); S.attempt = 0; connect(); return; }
      done(r.status === 429 ? 'signin.limited' : r.status === 403 ? 'signin.refused' : invite ? 'signin.badInvite' : 'signin.bad');
    }, function () { done('signin.unreachable'); });
  }

  /** Forgets everything this page held of the signed-in agent. */
  function resetApp() {
    stopTyping();
    S.token = null; S.everReady = false; S.agent = null;
    clearTimeout(S.retry);
    if (S.ws) { var w = S.ws; S.ws = null; w.close(1000); }
    S.convs.clear(); S.view.clear(); S.openId = null; S.thread.clear(); S.pending.clear(); S.marked.clear();
    S.typing.forEach(function (ty) { clearTimeout(ty.timer); });
    S.typing.clear();
    S.titleCount = 0; renderTitle();
    closeThread();
    S.cf.dirty = false;
    document.querySelectorAll('dialog[open]').forEach(function (d) { d.close(); });
    showView('inbox');
  }
  $('signout').addEventListener('click', function () {
    resetApp();
    // The server revokes the session (and closes its other tabs with 4001).
    fetch('/api/session', { method: 'DELETE', credentials: 'same-origin', cache: 'no-store', keepalive: true })
      .catch(function () { /* the cookie expires on its own; the page is signed out either way */ });
    $('signin-token').value = '';
    showSignin(null);
  });

  function connect() {
    clearTimeout(S.retry);
    if (S.ws && S.ws.readyState < 2) return; // one connection at a time
    var url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws/agent';
    var ws = S.ws = new WebSocket(url);
    var opened = false;
    S.ready = false;
    setConn('connecting', S.attempt ? 'conn.reconnecting' : 'conn.connecting');
    // Without a token, the server signs the page in by its session cookie.
    ws.onopen = function () {
      opened = true;
      ws.send(JSON.stringify(S.token ? { type: 'auth', token: S.token } : { type: 'auth' }));
    };
    ws.onmessage = function (e) {
      if (ws !== S.ws) return;
      var f;
      try { f = JSON.parse(e.data); } catch (err) { return; }
      // Refused before `ready` (a server that wants a token): not signed in.
      if (!S.ready && f.type === 'error') { S.ws = null; ws.close(1000); signedOut(S.everReady ? 'signin.ended' : null); return; }
      handle(f);
    };
    ws.onclose = function (e) {
      if (ws !== S.ws) return;
      S.ready = false;
      S.listQ = []; S.moreLoading = false;
      S.myTyping.conv = null;
      // An admin change in flight gets no answer on this connection: its dialog may retry.
      if (S.admin.busy) {
        S.admin.busy = null;
        document.querySelectorAll('dialog [type=submit], #confirm-ok').forEach(function (b) { b.disabled = false; });
      }
      if (e.code === 4001) {
        // No session, an expired or revoked one, or a refused token.
        signedOut(S.everReady ? 'signin.ended' : S.phase === 'probe' ? null : S.phase === 'invite' ? 'signin.badInvite' : 'signin.bad');
        return;
      }
      if (e.code === 4010) {
        // The agent's access changed (role, inboxes): a fresh `ready` right away.
        S.attempt = 0;
        connect();
        return;
      }
      if (S.phase === 'probe' && !opened) {
        // The server is down: the form says so, and the cookie is tried again now and
        // then, so the page signs itself in once the server is back.
        showSignin('signin.unreachable');
        var wait = Math.min(30000, 1000 * Math.pow(2, S.attempt++));
        S.retry = setTimeout(function () {
          if (S.phase === 'signin' && !S.posting) { S.phase = 'probe'; connect(); }
        }, wait);
        return;
      }
      if (S.phase !== 'app') {
        // Trying the cookie, the server hung up on us for another reason: not signed in.
        showSignin(S.phase === 'probe' && opened ? null : 'signin.unreachable');
        return;
      }
      setConn('offline', 'conn.offline');
      var delay = Math.min(30000, 500 * Math.pow(2, S.attempt++));
      S.retry = setTimeout(connect, delay / 2 + Math.random() * delay / 2);
    };
  }
  function signedOut(errorKey) {
    var wasIn = S.everReady;
    resetApp();
    if (wasIn) $('signin-token').value = '';
    showSignin(errorKey);
  }

  function handle(f) {
    switch (f.type) {
      case 'ready': return onReady(f);
      case 'conversations': return onConversations(f);
      case 'conversation': return onConversation(f);
      case 'conversation_updated': return upsert(f.conversation);
      case 'message': return onMessage(f.message, true);
      case 'ack': return onAck(f);
      case 'agent_typing':
        if (!f.agent || isMe(f.agent)) return;
        return onTyping(f.conversation_id, 'agent:' + f.agent.id, agentName(f.agent) || t('typing.anAgent'), f.active);
      case 'visitor_typing': return onTyping(f.conversation_id, 'visitor', null, f.active);
      case 'contact_lookup': return onLookup(f);
      case 'visitor_assigned': return onAssigned(f);
      case 'chatflow': return onChatflow(f);
      case 'team': return onTeam(f);
      case 'agent_created': return onAgentCreated(f);
      case 'error': return onError(f);
    }
  }

  function onReady(f) {
    var fromSignin = S.phase !== 'app';
    S.phase = 'app'; S.everReady = true;
    S.ready = true; S.attempt = 0;
    S.agent = f.agent || {};
    S.inboxes = f.inboxes || [];
    S.agents = f.agents || [];
    $('signin').hidden = true;
    $('app').hidden = false;
    setConn('online', 'conn.online');
    $('me-name').textContent = agentName(S.agent) || t('role.agent');
    $('me-role').textContent = t(S.agent.role === 'admin' ? 'role.admin' : 'role.agent');
    paintAvatar($('me-avatar'), S.agent.name || 'Agent', S.agent.id);
    document.querySelectorAll('.admin-only').forEach(function (el) { el.hidden = S.agent.role !== 'admin'; });
    if (!isAdmin()) {
      // No longer an admin (a 4010 after a change of role): nothing of the team stays.
      S.team = null;
      ['agent-dialog', 'inbox-dialog', 'confirm-dialog', 'invite-dialog'].forEach(function (id) { if ($(id).open) $(id).close(); });
    }
    // Kept, not cleared: rows stay put until the list's answer replaces them.
    (f.conversations || []).forEach(function (c) { S.convs.set(c.id, c); });
    requestList(false);
    // After signing in, focus goes to the search box (not on touch screens, where it
    // would open the keyboard).
    if (fromSignin && !(window.matchMedia && matchMedia('(pointer: coarse)').matches)) $('search').focus();
    if (S.openId) {
      if (S.convs.has(S.openId)) requestOpen(null); else closeThread();
    }
    S.pending.forEach(function (p, id) {
      S.ws.send(JSON.stringify({ type: 'reply', conversation_id: p.conversation_id, client_msg_id: id, text: p.text }));
    });
    if (isAdmin() && !$('settings-view').hidden) { onSettingsShown(); if (!S.cf.dirty) loadChatflow(S.cf.inbox); }
  }

  // ---- the list: filters, search, paging ----------------------------------------------
  function matchesFilter(c) {
    var f = S.filter;
    if (statusOf(c) !== f.status) return false;
    if (f.assignee === 'me') return isMe(c.assignee);
    if (f.assignee === 'none') return !c.assignee;
    return true;
  }
  /** Whether what the page holds of a conversation shows every word of the search (the
   * server searches all its messages; this sees the last one only). */
  function matchesQueryLocally(c) {
    var q = S.filter.query.toLowerCase();
    if (!q) return true;
    var v = c.visitor || {};
    var hay = [v.label, v.contact && v.contact.email, c.last_message && c.last_message.text].join(' ').toLowerCase();
    return q.split(/\s+/).every(function (w) { return hay.indexOf(w) >= 0; });
  }

  /** Asks for the first page of the current filter (`more` false), or the next one. */
  function requestList(more) {
    if (!connected()) return;
    if (more) {
      if (!S.next || S.moreLoading || S.listLoading || S.listLocal) return;
      S.moreLoading = true;
    } else {
      S.listGen++;
      S.listLoading = true; S.moreLoading = false;
    }
    S.ws.send(JSON.stringify({
      type: 'list', status: S.filter.status, assignee: S.filter.assignee,
      query: S.filter.query || null, before: more ? S.next : null, limit: PAGE
    }));
    S.listQ.push({ gen: S.listGen, more: !!more });
    renderList();
  }
  // Answers come in the order the frames were sent: the oldest request is answered.
  function onConversations(f) {
    var q = S.listQ.shift();
    if (!q || q.gen !== S.listGen) return;
    if (q.more) S.moreLoading = false;
    else { S.listLoading = false; S.view.clear(); S.hits.clear(); S.bottom = Infinity; S.listLocal = false; }
    (f.conversations || []).forEach(function (c) {
      S.convs.set(c.id, c);
      S.view.add(c.id);
      S.hits.add(c.id);
      S.bottom = Math.min(S.bottom, c.updated_at || 0);
    });
    S.next = f.next || null;
    renderList();
    fillPane();
  }
  /** A `list` refused (rate limited, or a server without it): true when it was ours. */
  function onListError(f) {
    if (!S.listQ.length || (f.code !== 'rate_limited' && f.code !== 'bad_frame')) return false;
    var q = S.listQ.shift();
    if (q.gen !== S.listGen) return true;
    if (q.more) S.moreLoading = false; else S.listLoading = false;
    if (f.code === 'rate_limited') {
      setTimeout(function () { if (q.gen === S.listGen) requestList(q.more); }, 3000);
    } else if (!q.more) {
      // A server that predates `list`: filter the newest conversations `ready` sent.
      S.listLocal = true; S.next = null; S.view.clear();
      S.convs.forEach(function (c) { if (matchesFilter(c) && matchesQueryLocally(c)) S.view.add(c.id); });
    }
    renderList();
    return true;
  }
  /** Loads pages until the list can scroll (a tall screen, a short first page). */
  function fillPane() {
    var list = $('conv-list');
    if (S.next && list.clientHeight > 0 && list.scrollHeight - list.scrollTop - list.clientHeight < 200) requestList(true);
  }
  $('conv-list').addEventListener('scroll', fillPane, { passive: true });
  // Up and down arrows move between the rows, Home and End to the first and last.
  $('conv-list').addEventListener('keydown', function (e) {
    var rows = Array.prototype.slice.call($('conv-list').querySelectorAll('.conv-btn'));
    var i = rows.indexOf(document.activeElement);
    if (i < 0) return;
    var to = { ArrowDown: i + 1, ArrowUp: i - 1, Home: 0, End: rows.length - 1 }[e.key];
    if (to === undefined || !rows[to]) return;
    e.preventDefault();
    rows[to].focus();
  });

  function setFilter(patch) {
    Object.assign(S.filter, patch);
    document.querySelectorAll('#status-filter .seg-btn').forEach(function (b) {
      b.setAttribute('aria-pressed', String(b.getAttribute('data-status') === S.filter.status));
    });
    document.querySelectorAll('#assignee-filter .seg-btn').forEach(function (b) {
      b.setAttribute('aria-pressed', String((b.getAttribute('data-assignee') || null) === S.filter.assignee));
    });
    S.view.clear(); S.next = null;
    $('conv-list').scrollTop = 0;
    requestList(false);
  }
  $('status-filter').addEventListener('click', function (e) {
    var b = e.target.closest('.seg-btn');
    if (b) setFilter({ status: b.getAttribute('data-status') });
  });
  $('assignee-filter').addEventListener('click', function (e) {
    var b = e.target.closest('.seg-btn');
    if (b) setFilter({ assignee: b.getAttribute('data-assignee') || null });
  });
  var searchTimer = null;
  $('search').addEventListener('input', function () {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(function () {
      var q = $('search').value.trim();
      if (q !== S.filter.query) setFilter({ query: q });
    }, SEARCH_DEBOUNCE);
  });

  /** A summary heard live: kept, and moved into or out of the list by the filter. */
  function upsert(c) {
    if (!c || !c.id) return;
    S.convs.set(c.id, c);
    place(c);
    renderList();
    if (c.id === S.openId) renderThreadHead();
  }
  function place(c) {
    if (!matchesFilter(c)) { S.view.delete(c.id); return; }
    if (S.view.has(c.id)) return;
    // One the server listed comes back; another joins if it is newer than the last row
    // loaded (an older one comes with its page) and, under a search, its text shows
    // the words.
    var loaded = !S.next || (c.updated_at || 0) >= S.bottom;
    var found = S.hits.has(c.id) || (loaded && matchesQueryLocally(c));
    if (S.listLocal ? matchesQueryLocally(c) : found && !S.listLoading) S.view.add(c.id);
  }

  function makeRow(id) {
    var r = {};
    r.avatar = h('span', { class: 'avatar' });
    r.avatar.appendChild(document.createTextNode(''));
    r.presence = h('span', { class: 'presence', 'data-testid': 'online-dot' });
    r.avatar.appendChild(r.presence);
    r.label = h('span', { class: 'conv-label', 'data-testid': 'conv-label' });
    r.time = h('time', { class: 'conv-time' });
    r.preview = h('span', { class: 'conv-preview', 'data-testid': 'conv-preview' });
    r.assignee = h('span', { class: 'conv-assignee', 'data-testid': 'conv-assignee' });
    r.inbox = h('span', { class: 'conv-inbox' });
    r.unreadCount = document.createTextNode('');
    r.unread = h('span', { class: 'conv-unread', 'data-testid': 'conv-unread' });
    r.unread.appendChild(r.unreadCount);
    r.unread.appendChild(h('span', { class: 'sr-only', text: ' unread' }));
    r.btn = h('button', { type: 'button', class: 'conv-btn' }, [
      r.avatar,
      h('span', { class: 'conv-main' }, [
        h('span', { class: 'conv-top' }, [r.label, r.time]),
        r.preview,
        h('span', { class: 'conv-meta' }, [r.assignee, r.inbox])
      ]),
      r.unread
    ]);
    r.btn.addEventListener('click', function () { openConversation(id); });
    r.li = h('li', { class: 'conv', 'data-testid': 'conv-item', 'data-conversation-id': id }, [r.btn]);
    S.rows.set(id, r);
    return r;
  }
  function visitorTyping(id) { return S.typing.has(id + '|visitor'); }
  function updateRow(r, c) {
    var v = c.visitor || {};
    var label = labelOf(c);
    var lm = c.last_message;
    var unread = c.unread || 0;
    setText(r.label, label);
    paintAvatar(r.avatar, label, v.id);
    setAttr(r.presence, 'class', 'presence' + (v.online ? ' online' : ''));
    setAttr(r.presence, 'data-online', v.online ? 'true' : 'false');
    setAttr(r.presence, 'title', t(v.online ? 'row.online' : 'row.offline'));
    setText(r.time, fmtTime(c.updated_at));
    var typing = visitorTyping(c.id);
    setText(r.preview, typing ? t('row.typing') : lm ? (lm.author.kind === 'agent' ? (lm.author.name ? t('row.agentPrefix', { name: lm.author.name }) : t('row.agent')) :
      lm.author.kind === 'system' ? t('row.auto') : '') + lm.text : t('row.noMessages'));
    r.preview.classList.toggle('typing', typing);
    setText(r.assignee, c.assignee ? (isMe(c.assignee) ? t('row.you') : agentName(c.assignee)) : t('row.unassigned'));
    setText(r.inbox, S.inboxes.length > 1 ? c.inbox : '');
    setText(r.unreadCount, unread > 0 ? String(unread) : '');
    r.unread.hidden = unread === 0;
    setAttr(r.li, 'class', 'conv' + (c.id === S.openId ? ' selected' : '') + (unread > 0 ? ' unread' : ''));
    setAttr(r.li, 'data-status', statusOf(c));
    setAttr(r.li, 'data-unread', String(unread));
    setAttr(r.btn, 'aria-current', c.id === S.openId ? 'true' : null);
  }

  /** Brings the list's rows in line with S.view, in place: rows are reused, moved only
   * when their order changed, and the focused element and the scroll position stay. */
  function renderList() {
    var list = $('conv-list');
    var ids = Array.from(S.view).filter(function (id) { return S.convs.has(id); });
    ids.sort(function (a, b) {
      var d = (S.convs.get(b).updated_at || 0) - (S.convs.get(a).updated_at || 0);
      return d || (a < b ? 1 : a > b ? -1 : 0);
    });
    var anchor = null, offset = 0;
    if (list.scrollTop > 0) {
      for (var k = 0; k < list.children.length; k++) {
        var el = list.children[k];
        if (el.offsetTop + el.offsetHeight > list.scrollTop) { anchor = el; offset = el.offsetTop - list.scrollTop; break; }
      }
    }
    var active = document.activeElement;
    var keep = new Set(ids);
    S.rows.forEach(function (r, id) { if (!keep.has(id)) { r.li.remove(); S.rows.delete(id); } });
    ids.forEach(function (id, i) {
      var r = S.rows.get(id) || makeRow(id);
      updateRow(r, S.convs.get(id));
      if (list.children[i] !== r.li) list.insertBefore(r.li, list.children[i] || null);
    });
    if (active && active !== document.activeElement && active.isConnected) active.focus({ preventScroll: true });
    if (anchor && anchor.isConnected) list.scrollTop = anchor.offsetTop - offset;
    setAttr(list, 'aria-busy', String(S.listLoading));
    setAttr(list, 'data-query', S.filter.query);
    var loading = S.listLoading && !ids.length;
    setText($('conv-count'), loading ? '…' : ids.length + (S.next ? '+' : ''));
    setAttr($('conv-count'), 'title', S.next ? t('list.more') : null);
    $('list-empty').hidden = ids.length > 0;
    setText($('list-empty-title'), loading ? t('empty.loading') : S.filter.query ? t('empty.query', { q: S.filter.query }) :
      t('empty.' + S.filter.status + (S.filter.assignee === 'me' ? 'Mine' : S.filter.assignee === 'none' ? 'None' : '')));
    setText($('list-empty-text'), loading ? '' : S.filter.query ? t('empty.queryText') : t('empty.text'));
  }

  // ---- the open conversation -------------------------------------------------------
  function openConversation(id) {
    if (S.openId !== id) {
      stopTyping();
      S.openId = id;
      S.thread.forEach(function (el) { el.remove(); });
      S.thread.clear();
      Array.prototype.slice.call($('thread-log').querySelectorAll('.msg, .day-sep')).forEach(function (el) { el.remove(); });
      $('reply-input').value = '';
      $('reply-send').disabled = true;
    }
    $('thread-none').hidden = true;
    $('thread').hidden = false;
    $('details-none').hidden = true;
    $('details-body').hidden = false;
    $('app').setAttribute('data-pane', 'thread');
    renderList();
    renderThreadHead();
    renderTyping();
    // The log is live for new messages, not for the history filled in now.
    $('thread-log').setAttribute('aria-busy', 'true');
    requestOpen(null);
    $('reply-input').focus();
  }
  function closeThread() {
    stopTyping();
    S.openId = null;
    $('thread').hidden = true; $('thread-none').hidden = false;
    $('details-body').hidden = true; $('details-none').hidden = false;
    $('app').setAttribute('data-pane', 'list');
    renderList();
  }
  function requestOpen(before) {
    if (before !== null) S.paging = true;
    else S.opening = S.openId;
    send({ type: 'open', conversation_id: S.openId, before: before, limit: 50 });
  }
  $('load-earlier').addEventListener('click', function () {
    var min = Infinity;
    S.thread.forEach(function (el) { min = Math.min(min, Number(el.getAttribute('data-seq'))); });
    if (min !== Infinity && !S.paging) requestOpen(min);
  });
  $('back').addEventListener('click', function () { $('app').setAttribute('data-pane', 'list'); });
  $('details-toggle').addEventListener('click', function () {
    var app = $('app');
    app.setAttribute('data-pane', app.getAttribute('data-pane') === 'details' ? 'thread' : 'details');
  });
  $('details-close').addEventListener('click', function () { $('app').setAttribute('data-pane', 'thread'); });

  // Status and assignee of the open conversation: the controls send, and show only
  // what the server said (a refusal puts them back).
  $('status-select').addEventListener('change', function () {
    if (!S.openId || !send({ type: 'set_status', conversation_id: S.openId, status: $('status-select').value })) renderThreadHead();
  });
  function assign(agentId) {
    if (!S.openId || !send({ type: 'assign', conversation_id: S.openId, agent_id: agentId })) renderThreadHead();
  }
  $('assignee-select').addEventListener('change', function () { assign($('assignee-select').value || null); });
  $('assign-me').addEventListener('click', function () { if (S.agent && S.agent.id) assign(S.agent.id); });

  function renderTools(c) {
    $('status-select').value = statusOf(c);
    var people = [{ id: '', name: t('row.unassigned') }];
    var known = {};
    // Only those who may take this conversation: members of its inbox (and whoever has it).
    var members = S.agents.filter(function (a) { return !a.inboxes || a.inboxes.indexOf(c.inbox) >= 0; });
    members.concat(S.agent && S.agent.id ? [S.agent] : [], c.assignee ? [c.assignee] : []).forEach(function (a) {
      if (!a || !a.id || known[a.id]) return;
      known[a.id] = true;
      var n = agentName(a) || t('role.agent');
      people.push({ id: a.id, name: isMe(a) ? t('thread.youSuffix', { name: n }) : n });
    });
    var sel = $('assignee-select');
    var sig = people.map(function (p) { return p.id + '=' + p.name; }).join('|');
    if (sel.getAttribute('data-sig') !== sig) {
      sel.textContent = '';
      people.forEach(function (p) { sel.appendChild(h('option', { value: p.id, text: p.name })); });
      sel.setAttribute('data-sig', sig);
    }
    sel.value = c.assignee ? c.assignee.id : '';
    $('assign-me').hidden = isMe(c.assignee);
  }

  function renderThreadHead() {
    var c = S.convs.get(S.openId);
    if (!c) return;
    var v = c.visitor || {};
    var label = labelOf(c);
    $('thread-label').textContent = label;
    $('thread-sub').textContent = t(v.online ? 'thread.onlineNow' : 'thread.offline') + (v.contact && v.contact.email ? ' · ' + v.contact.email : '');
    $('thread-sub').className = 'thread-sub' + (v.online ? ' online' : '');
    paintAvatar($('thread-avatar'), label, v.id);
    $('thread-log').querySelectorAll('.msg[data-anon] .msg-who').forEach(function (w) { w.textContent = label; });
    renderTools(c);
    S.thread.forEach(renderMeta);
    // details pane
    paintAvatar($('d-avatar'), label, v.id);
    $('d-label').textContent = label;
    $('d-presence').textContent = t(v.online ? 'thread.onlineNow' : 'thread.offline');
    $('d-presence').className = 'presence-text' + (v.online ? ' online' : '');
    var box = $('d-contact');
    box.textContent = '';
    if (v.contact) {
      var ct = v.contact;
      box.appendChild(h('dl', { class: 'facts' }, [
        h('dt', { text: t('details.name') }), h('dd', { 'data-testid': 'details-contact-name', text: fullName(ct) || '—' }),
        h('dt', { text: t('email') }), h('dd', { 'data-testid': 'details-contact-email', text: ct.email }),
        h('dt', { text: t('details.source') }), h('dd', { text: t(ct.source === 'email_capture' ? 'details.sourceCapture' : 'details.sourceAgent') }),
        h('dt', { text: t('details.since') }), h('dd', { text: fmtFull(ct.created_at) })
      ]));
      $('assign-open').textContent = t('details.change');
    } else {
      box.appendChild(h('p', { class: 'muted', text: t('details.notLinked') }));
      $('assign-open').textContent = t('details.link');
    }
    $('d-inbox').textContent = c.inbox || '';
    $('d-started').textContent = fmtFull(c.created_at);
    $('d-updated').textContent = fmtFull(c.updated_at);
    $('d-visitor').textContent = v.id || '';
    var page = $('d-page');
    page.textContent = '';
    var url = v.page && v.page.url;
    if (url && /^https?:\/\//i.test(url)) {
      var a = h('a', { href: url, target: '_blank', rel: 'noopener noreferrer', text: (v.page.title || url) });
      a.title = url;
      page.appendChild(a);
    } else {
      page.textContent = (v.page && (v.page.title || v.page.url)) || '—';
    }
  }

  function msgEl(m, pending) {
    var kind = (m.author && m.author.kind) || 'system';
    var c = S.convs.get(m.conversation_id || S.openId);
    var name = kind === 'agent' ? m.author.name : kind === 'visitor' ? (m.author.name || labelOf(c)) : null;
    // A text of ours (not a name) is marked with its key, so a language change redoes it.
    var key = name ? null : kind === 'agent' ? 'role.agent' : kind === 'visitor' ? 'visitor.default' : 'thread.automatic';
    var body = h('div', { class: 'msg-body', 'data-testid': 'thread-message-text' });
    body.appendChild(linkified(m.text || ''));
    var el = h('div', { class: 'msg ' + kind, 'data-testid': 'thread-message', 'data-author': kind }, [
      h('div', { class: 'msg-who', 'data-t': key, text: name || t(key) }),
      body,
      h('div', { class: 'msg-meta', 'data-testid': 'thread-message-meta' })
    ]);
    if (kind === 'visitor' && !m.author.name) el.setAttribute('data-anon', '');
    if (pending) { el.setAttribute('data-status', 'pending'); el.lastChild.textContent = t('thread.sending'); }
    else stamp(el, m);
    return el;
  }
  function stamp(el, m) {
    el.setAttribute('data-id', m.id);
    el.setAttribute('data-seq', m.seq);
    el.setAttribute('data-status', 'sent');
    el._seq = m.seq;
    el._at = m.at;
    renderMeta(el);
  }
  /** An agent reply's time, and "Seen" once the visitor has seen its seq. */
  function renderMeta(el) {
    if (el.getAttribute('data-status') !== 'sent') return;
    var c = S.convs.get(S.openId);
    var seen = el.getAttribute('data-author') === 'agent' && !!c && el._seq <= (c.visitor_seen_seq || 0);
    setAttr(el, 'data-seen', seen ? 'true' : null);
    setText(el.lastChild, fmtMsgTime(el._at) + (seen ? ' · ' + t('thread.seen') : ''));
    setAttr(el.lastChild, 'title', el._at ? fmtFull(el._at) : null);
  }
  /** Day separators: one before the first message of each day, saying "Today",
   * "Yesterday" or the date. Kept in step in place, like the rows of the list. */
  function renderDays() {
    var log = $('thread-log'), last = null;
    Array.prototype.slice.call(log.querySelectorAll('.day-sep')).forEach(function (sep) {
      var next = sep.nextElementSibling;
      if (!next || !next.classList.contains('msg')) sep.remove();
    });
    Array.prototype.slice.call(log.querySelectorAll('.msg')).forEach(function (el) {
      var at = el._at || Date.now(); // one still being sent: today
      var d = new Date(at), key = d.getFullYear() + '-' + d.getMonth() + '-' + d.getDate();
      var prev = el.previousElementSibling;
      var sep = prev && prev.classList.contains('day-sep') ? prev : null;
      if (key === last) {
        if (sep) sep.remove();
      } else {
        if (!sep) {
          sep = h('div', { class: 'day-sep', 'data-testid': 'day-separator' }, [h('span')]);
          log.insertBefore(sep, el);
        }
        setAttr(sep, 'data-day', key);
        setText(sep.firstChild, dayLabel(at));
      }
      last = key;
    });
  }
  var URL_RE = /\bhttps?:\/\/[^\s<>"]+/gi;
  /** A message's text with its http and https URLs as links, made of text nodes and <a>s
   * (never parsed as HTML). Nothing else becomes a link: javascript:, data: and the like
   * stay text. Punctuation at a URL's end belongs to the sentence. */
  function linkified(text) {
    var frag = document.createDocumentFragment(), last = 0, m;
    URL_RE.lastIndex = 0;
    while ((m = URL_RE.exec(text))) {
      var raw = m[0].replace(/[.,;:!?'\u2019\u201d\u00bb]+$/, '');
      if (/\)$/.test(raw) && raw.split('(').length < raw.split(')').length) raw = raw.replace(/\)+$/, '');
      URL_RE.lastIndex = m.index + raw.length;
      var href = safeHref(raw);
      if (!href) continue;
      if (m.index > last) frag.appendChild(document.createTextNode(text.slice(last, m.index)));
      frag.appendChild(h('a', { href: href, target: '_blank', rel: 'noopener noreferrer', text: raw }));
      last = m.index + raw.length;
    }
    if (last < text.length) frag.appendChild(document.createTextNode(text.slice(last)));
    return frag;
  }
  function safeHref(raw) {
    try {
      var u = new URL(raw);
      return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
    } catch (e) { return null; }
  }
  // Inserts by seq; messages awaiting their ack stay at the end.
  function placeMsg(el) {
    var log = $('thread-log');
    var seq = el._seq === undefined ? Infinity : el._seq;
    var kids = log.querySelectorAll('.msg');
    for (var i = 0; i < kids.length; i++) {
      var k = kids[i]._seq === undefined ? Infinity : kids[i]._seq;
      if (kids[i] !== el && k > seq) { log.insertBefore(el, kids[i]); renderDays(); return; }
    }
    log.appendChild(el);
    renderDays();
  }
  function addMsg(m) {
    if (!m || S.thread.has(m.id)) return false;
    var el = msgEl(m, false);
    S.thread.set(m.id, el);
    placeMsg(el);
    return true;
  }
  function atBottom() { var l = $('thread-log'); return l.scrollHeight - l.scrollTop - l.clientHeight < 80; }
  function toBottom() { var l = $('thread-log'); l.scrollTop = l.scrollHeight; }

  function onConversation(f) {
    var c = f.conversation;
    if (!c) return;
    if (S.opening === c.id) S.opening = null;
    S.convs.set(c.id, c);
    place(c);
    if (c.id !== S.openId) { renderList(); return; }
    var log = $('thread-log');
    var paging = S.paging;
    S.paging = false;
    var fromBottom = log.scrollHeight - log.scrollTop;
    (f.messages || []).forEach(addMsg);
    log.setAttribute('aria-busy', 'false');
    if (paging) log.scrollTop = log.scrollHeight - fromBottom; else toBottom();
    // has_more describes the page before the oldest message we hold.
    if (paging || S.thread.size <= (f.messages || []).length) S.hasMore = !!f.has_more;
    $('load-earlier').hidden = !S.hasMore;
    renderList();
    renderThreadHead();
    markRead();
  }

  function onMessage(m, live) {
    if (!m) return;
    var c = S.convs.get(m.conversation_id);
    var fresh = !c || !c.last_message || c.last_message.seq < m.seq;
    if (c && (!c.last_message || c.last_message.seq <= m.seq)) {
      c.last_message = m;
      c.updated_at = Math.max(c.updated_at || 0, m.at || 0);
    }
    // Whoever sent it stopped typing.
    if (m.author.kind === 'visitor') onTyping(m.conversation_id, 'visitor', null, false);
    if (m.conversation_id === S.openId) {
      var stick = atBottom();
      if (addMsg(m) && stick) toBottom();
    }
    if (c) renderList();
    if (live && fresh && m.author.kind === 'visitor') alertVisitorMessage(m, c);
  }

  // ---- unread, title, notifications, sound ------------------------------------------------
  /** Tells the server this agent has read the open conversation, when they can see it. */
  function markRead() {
    var id = S.openId;
    if (!id || !attentive()) return;
    var c = S.convs.get(id);
    var seq = c && c.last_message ? c.last_message.seq : 0;
    S.thread.forEach(function (el) { if (el._seq !== undefined) seq = Math.max(seq, el._seq); });
    if (!seq || (S.marked.get(id) || 0) >= seq) return;
    if (sendQuiet({ type: 'mark_read', conversation_id: id, seq: seq })) S.marked.set(id, seq);
  }
  function renderTitle() {
    document.title = S.titleCount > 0 ? '(' + S.titleCount + ') ' + t('doc.title') : t('doc.title');
  }
  function onAttention() {
    if (!attentive()) return;
    if (S.titleCount) { S.titleCount = 0; renderTitle(); }
    markRead();
  }
  window.addEventListener('focus', onAttention);
  document.addEventListener('visibilitychange', onAttention);

  function alertVisitorMessage(m, c) {
    var open = m.conversation_id === S.openId;
    var looking = attentive();
    if (open) markRead();
    if (!looking) { S.titleCount++; renderTitle(); }
    if (looking && open) return;
    notify(m, c);
    beep();
  }

  function notifyState() {
    if (!('Notification' in window)) return 'unsupported';
    var p = Notification.permission;
    if (p === 'granted') return pref(NOTIFY_KEY) === 'off' ? 'off' : 'on';
    return p; // 'default' or 'denied'
  }
  function renderAlertControls() {
    var b = $('notify-toggle');
    var st = notifyState();
    b.hidden = st === 'unsupported';
    b.disabled = st === 'denied';
    setText(b, t({ on: 'notify.on', off: 'notify.off', denied: 'notify.blocked' }[st] || 'notify.enable'));
    setAttr(b, 'aria-pressed', String(st === 'on'));
    setAttr(b, 'data-state', st);
    setAttr(b, 'title', st === 'denied' ? t('notify.blockedHint') : null);
    var on = pref(SOUND_KEY) === 'on';
    setText($('sound-toggle'), t(on ? 'sound.on' : 'sound.off'));
    setAttr($('sound-toggle'), 'aria-pressed', String(on));
  }
  // The permission is asked for only here, after a click: never on load.
  $('notify-toggle').addEventListener('click', function () {
    var st = notifyState();
    if (st === 'on' || st === 'off') { setPref(NOTIFY_KEY, st === 'on' ? 'off' : 'on'); renderAlertControls(); return; }
    if (st !== 'default') return;
    var done = function () { setPref(NOTIFY_KEY, 'on'); renderAlertControls(); };
    var r = Notification.requestPermission(done);
    if (r && r.then) r.then(done, renderAlertControls);
  });
  function notify(m, c) {
    if (notifyState() !== 'on') return;
    try {
      var n = new Notification(c ? labelOf(c) : t('notify.newConversation'), { body: m.text.slice(0, 160), tag: m.conversation_id });
      n.onclick = function () { window.focus(); openConversation(m.conversation_id); n.close(); };
    } catch (e) { /* a browser that only notifies from a service worker */ }
  }
  // A short tone made with WebAudio: no file to fetch, nothing for the CSP to refuse.
  var audio = null;
  function beep(force) {
    if (!force && pref(SOUND_KEY) !== 'on') return;
    var AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) return;
    try {
      if (!audio) audio = new AC();
      if (audio.state === 'suspended') audio.resume();
      var at = audio.currentTime, o = audio.createOscillator(), g = audio.createGain();
      o.type = 'sine';
      o.frequency.setValueAtTime(880, at);
      o.frequency.setValueAtTime(660, at + 0.12);
      g.gain.setValueAtTime(0.0001, at);
      g.gain.exponentialRampToValueAtTime(0.15, at + 0.02);
      g.gain.exponentialRampToValueAtTime(0.0001, at + 0.3);
      o.connect(g); g.connect(audio.destination);
      o.start(at); o.stop(at + 0.32);
    } catch (e) { /* no audio device */ }
  }
  $('sound-toggle').addEventListener('click', function () {
    var on = pref(SOUND_KEY) !== 'on';
    setPref(SOUND_KEY, on ? 'on' : 'off');
    renderAlertControls();
    if (on) beep(true); // a sample, and the click lets the audio start
  });

  // ---- typing, both ways -------------------------------------------------------------------
  function onTyping(conv, who, name, active) {
    if (!conv) return;
    var key = conv + '|' + who;
    var ty = S.typing.get(key);
    if (!ty && !active) return;
    if (ty) clearTimeout(ty.timer);
    if (active) {
      S.typing.set(key, { conv: conv, who: who, name: name, timer: setTimeout(function () {
        S.typing.delete(key); typingChanged(conv);
      }, TYPING_EXPIRY) });
    } else {
      S.typing.delete(key);
    }
    typingChanged(conv);
  }
  function typingChanged(conv) {
    var r = S.rows.get(conv), c = S.convs.get(conv);
    if (r && c) updateRow(r, c);
    if (conv === S.openId) renderTyping();
  }
  function renderTyping() {
    var lines = [];
    S.typing.forEach(function (ty) {
      if (ty.conv !== S.openId) return;
      if (ty.who === 'visitor') lines.unshift(t('typing.visitor'));
      else lines.push(t('typing.agent', { name: ty.name }));
    });
    setText($('typing'), lines.join(' · '));
  }

  /** Our own typing state for the open conversation: sent when it starts, renewed at
   * most every TYPING_RENEW while keys are pressed, ended on send, on an empty box and
   * after TYPING_IDLE without a keystroke. */
  function startTyping() {
    var T = S.myTyping, now = Date.now();
    if (T.conv && T.conv !== S.openId) stopTyping();
    if (T.conv !== S.openId || now - T.sentAt >= TYPING_RENEW) {
      if (sendQuiet({ type: 'typing', conversation_id: S.openId, active: true })) { T.conv = S.openId; T.sentAt = now; }
    }
    clearTimeout(T.idle);
    T.idle = setTimeout(stopTyping, TYPING_IDLE);
  }
  function stopTyping() {
    var T = S.myTyping;
    clearTimeout(T.idle);
    if (!T.conv) return;
    sendQuiet({ type: 'typing', conversation_id: T.conv, active: false });
    T.conv = null; T.sentAt = 0;
  }

  // ---- replying --------------------------------------------------------------------
  var reply = $('reply-input');
  reply.addEventListener('input', function () {
    var text = reply.value.trim();
    $('reply-send').disabled = !text;
    reply.style.height = 'auto';
    reply.style.height = Math.min(reply.scrollHeight + 2, 160) + 'px';
    if (!S.openId) return;
    if (text) startTyping(); else stopTyping();
  });
  reply.addEventListener('keydown', function (e) {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); sendReply(); }
  });
  $('composer').addEventListener('submit', function (e) { e.preventDefault(); sendReply(); });

  function sendReply() {
    var text = reply.value.trim();
    if (!text || !S.openId) return;
    stopTyping();
    var id = uuid();
    var el = msgEl({ author: { kind: 'agent', name: S.agent && S.agent.name }, text: text }, true);
    el.setAttribute('data-client-msg-id', id);
    S.pending.set(id, { conversation_id: S.openId, text: text, el: el });
    placeMsg(el);
    toBottom();
    reply.value = ''; reply.style.height = 'auto';
    $('reply-send').disabled = true;
    if (connected()) {
      S.ws.send(JSON.stringify({ type: 'reply', conversation_id: S.openId, client_msg_id: id, text: text }));
    } else {
      el.lastChild.textContent = t('thread.waiting');
    }
  }
  function onAck(f) {
    var p = S.pending.get(f.client_msg_id);
    var m = f.message;
    if (!p) { onMessage(m, false); return; }
    S.pending.delete(f.client_msg_id);
    onMessage(m, false); // updates the list preview; a duplicate element is skipped below
    if (S.thread.has(m.id) && S.thread.get(m.id) !== p.el) { p.el.remove(); renderDays(); return; }
    stamp(p.el, m);
    S.thread.set(m.id, p.el);
    if (p.conversation_id === S.openId) placeMsg(p.el);
  }

  // ---- errors ----------------------------------------------------------------------
  function onError(f) {
    var p = f.ref && S.pending.get(f.ref);
    if (p) {
      S.pending.delete(f.ref);
      p.el.setAttribute('data-status', 'failed');
      p.el.lastChild.textContent = t('thread.notSent', { reason: errorText(f) });
      return;
    }
    if (onListError(f)) return;
    // The open conversation is not this agent's any more (their inboxes changed).
    if (f.code === 'not_found' && S.opening && S.opening === S.openId) {
      S.opening = null;
      S.view.delete(S.openId); S.convs.delete(S.openId);
      closeThread();
      toast(errorText(f), true);
      return;
    }
    if ($('assign-dialog').open && S.dialogBusy) {
      S.dialogBusy = false;
      setDialogBusy(false);
      var e = $('assign-error');
      e.textContent = errorText(f);
      e.hidden = false;
      return;
    }
    if (onAdminError(f)) return;
    if (S.cf.saving) {
      S.cf.saving = false;
      $('cf-save').disabled = false;
      $('cf-status').textContent = errorText(f, 'chatflow');
      $('cf-status').className = 'form-status bad';
      return;
    }
    // A refused status or assignee change: the controls show the server's state again.
    if (S.openId) renderThreadHead();
    toast(errorText(f), true);
  }
  /** The friendly text for an error's code, in the page's language; where it matters,
   * for what was being done (`context`). The server's `message` is for developers and
   * is never shown. */
  function errorText(f, context) {
    var code = (f && f.code) || 'internal';
    if (context && STRINGS.en['err.' + code + '.' + context]) return t('err.' + code + '.' + context);
    if (STRINGS.en['err.' + code]) return t('err.' + code);
    return t('err.other', { code: code });
  }

  // ---- the assign dialog ---------------------------------------------------------------
  var dialog = $('assign-dialog');
  function setDialogBusy(busy) {
    ['assign-lookup', 'assign-confirm', 'assign-create'].forEach(function (id) { $(id).disabled = busy; });
  }
  function resetDialogSteps() {
    $('assign-found').hidden = true;
    $('assign-new').hidden = true;
    $('assign-error').hidden = true;
    S.lookupEmail = null;
  }
  $('assign-open').addEventListener('click', function () {
    if (!S.openId) return;
    resetDialogSteps();
    S.dialogBusy = false; setDialogBusy(false);
    $('assign-email').value = '';
    $('assign-first').value = ''; $('assign-last').value = '';
    dialog.showModal();
    $('assign-email').focus();
  });
  $('assign-close').addEventListener('click', function () { dialog.close(); });
  $('assign-email').addEventListener('input', resetDialogSteps);
  $('assign-lookup-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var email = $('assign-email').value.trim();
    resetDialogSteps();
    if (!email) { showDialogError(t('assign.emailFirst')); return; }
    S.lookupEmail = email;
    if (send({ type: 'lookup_contact', email: email })) { S.dialogBusy = true; setDialogBusy(true); }
  });
  function showDialogError(text) { var e = $('assign-error'); e.textContent = text; e.hidden = false; }
  function onLookup(f) {
    if (!dialog.open || !S.lookupEmail || (f.email || '').toLowerCase() !== S.lookupEmail.toLowerCase()) return;
    S.dialogBusy = false; setDialogBusy(false);
    if (f.contact) {
      var c = f.contact;
      var name = fullName(c) || c.email;
      $('af-name').textContent = name;
      $('af-email').textContent = c.email;
      paintAvatar($('af-avatar'), name, c.id);
      $('assign-found').hidden = false;
      $('assign-confirm').focus();
    } else {
      $('assign-new').hidden = false;
      $('assign-first').focus();
    }
  }
  $('assign-confirm').addEventListener('click', function () {
    if (!S.lookupEmail || !S.openId) return;
    $('assign-error').hidden = true;
    if (send({ type: 'assign_visitor', conversation_id: S.openId, email: S.lookupEmail })) { S.dialogBusy = true; setDialogBusy(true); }
  });
  $('assign-new').addEventListener('submit', function (e) {
    e.preventDefault();
    if (!S.lookupEmail || !S.openId) return;
    $('assign-error').hidden = true;
    var frame = { type: 'create_contact', conversation_id: S.openId, email: S.lookupEmail,
      first_name: $('assign-first').value.trim(), last_name: $('assign-last').value.trim() };
    if (send(frame)) { S.dialogBusy = true; setDialogBusy(true); }
  });
  function onAssigned(f) {
    var c = S.convs.get(f.conversation_id);
    if (c && f.contact) {
      c.visitor = Object.assign({}, c.visitor, { contact: f.contact, label: fullName(f.contact) || f.contact.email });
      renderList();
      if (c.id === S.openId) renderThreadHead();
    }
    if (dialog.open && f.conversation_id === S.openId) {
      S.dialogBusy = false; setDialogBusy(false);
      dialog.close();
      toast(t('assign.linked', { name: fullName(f.contact) || f.contact.email }));
    }
  }

  // ---- chatflow settings (admins) -----------------------------------------------------------
  function showView(v) {
    // Unsaved chatflow edits are kept (the form is not reloaded) and the agent told.
    if (v === 'inbox' && !$('settings-view').hidden && S.cf.dirty) toast(t('cf.unsaved'));
    $('inbox-view').hidden = v !== 'inbox';
    $('settings-view').hidden = v !== 'settings';
    $('tab-inbox').classList.toggle('active', v === 'inbox');
    $('tab-settings').classList.toggle('active', v === 'settings');
    setAttr($('tab-inbox'), 'aria-current', v === 'inbox' ? 'page' : null);
    setAttr($('tab-settings'), 'aria-current', v === 'settings' ? 'page' : null);
    if (v === 'settings' && isAdmin()) {
      onSettingsShown();
      if (S.cf.dirty) return;
      var sel = $('cf-inbox');
      sel.textContent = '';
      S.inboxes.forEach(function (k) { sel.appendChild(h('option', { value: k, text: k })); });
      if (S.cf.inbox && S.inboxes.indexOf(S.cf.inbox) >= 0) sel.value = S.cf.inbox;
      loadChatflow(sel.value);
    }
  }
  $('tab-inbox').addEventListener('click', function () { showView('inbox'); });
  $('tab-settings').addEventListener('click', function () { showView('settings'); });
  $('cf-inbox').addEventListener('change', function () { loadChatflow($('cf-inbox').value); });
  $('cf-when').addEventListener('change', syncChatflowForm);
  $('cf-away-mode').addEventListener('change', syncChatflowForm);
  $('cf-followup-enabled').addEventListener('change', syncChatflowForm);

  function loadChatflow(inbox) {
    if (!inbox) return;
    S.cf.inbox = inbox; S.cf.data = null;
    $('cf-status').textContent = t('cf.loading');
    S.cf.dirty = false;
    showFieldError('cf-delay', null); showFieldError('cf-followup-delay', null);
    $('cf-status').className = 'form-status';
    $('cf-save').disabled = true;
    send({ type: 'get_chatflow', inbox: inbox });
  }
  function validSeconds(v) { return /^\d+$/.test(String(v).trim()) && Number(v) >= 1 && Number(v) <= 86400; }
  /** Marks a field invalid with the text under it, or clears it (text null). */
  function showFieldError(id, text) {
    var e = $(id + '-error');
    setAttr($(id), 'aria-invalid', text ? 'true' : null);
    if (!e) return;
    e.hidden = !text;
    setText(e, text || '');
  }
  $('chatflow-form').addEventListener('input', function (e) {
    S.cf.dirty = true;
    if (e.target.id === 'cf-delay' || e.target.id === 'cf-followup-delay') showFieldError(e.target.id, null);
  });
  function syncChatflowForm() {
    $('cf-delay').disabled = $('cf-when').value !== 'no_reply';
    $('cf-message').disabled = $('cf-when').value === 'never';
    $('cf-away-message').disabled = $('cf-away-mode').value === 'off';
    $('cf-followup-delay').disabled = !$('cf-followup-enabled').checked;
  }
  function onChatflow(f) {
    if (f.inbox !== S.cf.inbox) return;
    var cf = f.chatflow || {};
    var ec = cf.email_capture || {}, aw = cf.away || {}, fu = cf.follow_up || {};
    S.cf.data = cf;
    $('cf-when').value = ec.when || 'no_reply';
    $('cf-delay').value = ec.delay_secs != null ? ec.delay_secs : 60;
    $('cf-message').value = ec.message || '';
    $('cf-away-mode').value = aw.mode || 'off';
    $('cf-away-message').value = aw.message || '';
    $('cf-followup-enabled').checked = fu.enabled !== false; // the server's default is on
    $('cf-followup-delay').value = fu.delay_secs != null ? fu.delay_secs : 120;
    syncChatflowForm();
    $('cf-save').disabled = false;
    $('cf-status').className = 'form-status' + (S.cf.saving ? ' good' : '');
    $('cf-status').textContent = S.cf.saving ? t('cf.saved') : '';
    S.cf.dirty = false;
    S.cf.saving = false;
  }
  $('chatflow-form').addEventListener('submit', function (e) {
    e.preventDefault();
    if (!S.cf.inbox || !S.cf.data) return;
    var base = S.cf.data;
    // Checked here, at the field, before the server would refuse it.
    var bad = ['cf-delay', 'cf-followup-delay'].filter(function (id) {
      var ok = $(id).disabled || validSeconds($(id).value);
      showFieldError(id, ok ? null : t('cf.delayRange'));
      return !ok;
    });
    if (bad.length) {
      $('cf-status').className = 'form-status bad';
      $('cf-status').textContent = t('cf.fixFields');
      $(bad[0]).focus();
      return;
    }
    var delay = parseInt($('cf-delay').value, 10);
    var fdelay = parseInt($('cf-followup-delay').value, 10);
    // Keep fields this page does not know about: the server may have added some.
    var chatflow = Object.assign({}, base, {
      email_capture: Object.assign({}, base.email_capture, {
        when: $('cf-when').value,
        delay_secs: isFinite(delay) ? delay : 60,
        message: $('cf-message').value.trim() || null
      }),
      away: Object.assign({}, base.away, {
        mode: $('cf-away-mode').value,
        message: $('cf-away-message').value.trim() || null
      }),
      follow_up: Object.assign({}, base.follow_up, {
        enabled: $('cf-followup-enabled').checked,
        delay_secs: isFinite(fdelay) ? fdelay : 120
      })
    });
    if (send({ type: 'update_chatflow', inbox: S.cf.inbox, chatflow: chatflow })) {
      S.cf.saving = true;
      $('cf-save').disabled = true;
      $('cf-status').className = 'form-status';
      $('cf-status').textContent = t('cf.saving');
    }
  });

  window.addEventListener('online', function () {
    if (S.phase === 'app' && !S.ready) { S.attempt = 0; connect(); }
  });

  // ---- team and inboxes (admins) --------------------------------------------------------
  // The server's `team` frame is the truth: every list is drawn from it, and a dialog
  // closes only when the change it asked for came back (or shows the error it got).
  /** The admin sections (team, inboxes) load when settings are shown. */
  function onSettingsShown() {
    if (!isAdmin()) return;
    sendQuiet({ type: 'get_team' });
  }
  function onTeam(f) {
    S.team = { agents: f.agents || [], inboxes: f.inboxes || [] };
    var me = S.agent && S.team.agents.filter(function (a) { return a.id === S.agent.id; })[0];
    if (me) {
      S.agent.name = me.name; S.agent.display_name = me.display_name;
      $('me-name').textContent = agentName(S.agent);
    }
    renderTeam();
    renderInboxes();
    refreshInboxChoice();
    if (S.admin.busy && S.admin.busy !== 'create' && S.admin.busy !== 'invite') {
      var d = S.admin.dialog;
      S.admin.busy = null; S.admin.dialog = null;
      if (d && d.open) d.close();
      if (S.admin.toast) { toast(S.admin.toast); S.admin.toast = null; }
    }
  }
  languageChanged.push(function () { if (S.team) { renderTeam(); renderInboxes(); } });

  function teamAgent(id) { return S.team && S.team.agents.filter(function (a) { return a.id === id; })[0]; }
  function inboxName(key) {
    var i = S.team && S.team.inboxes.filter(function (x) { return x.key === key; })[0];
    return i ? i.name || i.key : key;
  }
  /** Rows drawn in place by key (like the conversation list), so focus stays on a button
   * while `team` frames come in. */
  function syncRows(list, items, keyOf, make, update) {
    var keep = {};
    items.forEach(function (it, i) {
      var k = keyOf(it);
      keep[k] = true;
      var li = list.querySelector('[data-key="' + CSS.escape(k) + '"]') || make(it, k);
      update(li, it);
      if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
    });
    Array.prototype.slice.call(list.children).forEach(function (li) {
      if (!li.getAttribute('data-key') || !keep[li.getAttribute('data-key')]) li.remove();
    });
  }
  function renderTeam() {
    var list = $('team-list');
    if (!S.team) return;
    syncRows(list, S.team.agents, function (a) { return a.id; }, function (a, k) {
      var r = {
        title: h('span', { class: 'admin-row-title', 'data-testid': 'team-agent-name' }),
        sub: h('span', { class: 'admin-row-sub', 'data-testid': 'team-agent-sub' }),
        edit: h('button', { type: 'button', class: 'btn sm', 'data-testid': 'team-agent-edit' }),
        invite: h('button', { type: 'button', class: 'btn sm', 'data-testid': 'team-agent-invite' }),
        revoke: h('button', { type: 'button', class: 'btn sm', 'data-testid': 'team-agent-revoke' })
      };
      r.edit.addEventListener('click', function () { openAgentDialog(teamAgent(k)); });
      r.invite.addEventListener('click', function () { reissueInvite(teamAgent(k)); });
      r.revoke.addEventListener('click', function () { confirmRevoke(teamAgent(k)); });
      var li = h('li', { class: 'admin-row', 'data-testid': 'team-agent', 'data-key': k, 'data-agent-id': k }, [
        h('div', { class: 'admin-row-main' }, [r.title, r.sub]),
        h('div', { class: 'admin-row-actions' }, [r.edit, r.invite, r.revoke])
      ]);
      li._r = r;
      return li;
    }, function (li, a) {
      var r = li._r, me = isMe(a);
      r.title.textContent = '';
      r.title.appendChild(document.createTextNode(a.name + (me ? ' (' + t('team.you') + ')' : '')));
      r.title.appendChild(h('span', { class: 'badge', text: t(a.role === 'admin' ? 'role.admin' : 'role.agent') }));
      if (a.revoked) r.title.appendChild(h('span', { class: 'badge bad', 'data-testid': 'team-agent-revoked', text: t('team.revoked') }));
      var inboxes = (a.inboxes || []).map(inboxName).join(', ') || t('team.noInboxes');
      setText(r.sub, t('team.seenAs', { name: a.display_name || a.name }) + ' · ' + inboxes);
      setAttr(li, 'data-revoked', a.revoked ? 'true' : 'false');
      setText(r.edit, t('team.edit'));
      setAttr(r.edit, 'aria-label', t('team.editFor', { name: a.name }));
      setText(r.invite, t('team.invite'));
      setAttr(r.invite, 'aria-label', t('team.inviteFor', { name: a.name }));
      setText(r.revoke, t('team.revoke'));
      setAttr(r.revoke, 'aria-label', t('team.revokeFor', { name: a.name }));
      // Nobody revokes themselves; a revoked agent is kept for the record only.
      r.edit.hidden = a.revoked; r.invite.hidden = a.revoked; r.revoke.hidden = a.revoked || me;
    });
  }
  function renderInboxes() {
    var list = $('inbox-list');
    if (!S.team) return;
    syncRows(list, S.team.inboxes, function (i) { return i.key; }, function (i, k) {
      var r = {
        title: h('span', { class: 'admin-row-title', 'data-testid': 'team-inbox-name' }),
        sub: h('span', { class: 'admin-row-sub', 'data-testid': 'team-inbox-origins' }),
        edit: h('button', { type: 'button', class: 'btn sm', 'data-testid': 'team-inbox-edit' })
      };
      r.edit.addEventListener('click', function () {
        openInboxDialog(S.team.inboxes.filter(function (x) { return x.key === k; })[0]);
      });
      var li = h('li', { class: 'admin-row', 'data-testid': 'team-inbox', 'data-key': k, 'data-inbox-key': k }, [
        h('div', { class: 'admin-row-main' }, [r.title, r.sub]),
        h('div', { class: 'admin-row-actions' }, [r.edit])
      ]);
      li._r = r;
      return li;
    }, function (li, i) {
      var r = li._r, w = i.widget || {};
      r.title.textContent = '';
      if (w.color) {
        var sw = h('span', { class: 'swatch', 'aria-hidden': 'true' });
        sw.style.background = w.color;
        r.title.appendChild(sw);
      }
      r.title.appendChild(document.createTextNode((i.name || i.key) + ' '));
      r.title.appendChild(h('span', { class: 'badge mono', text: i.key }));
      setText(r.sub, (i.origins || []).length ? i.origins.join(', ') : t('inboxes.anySite'));
      setText(r.edit, t('inboxes.edit'));
      setAttr(r.edit, 'aria-label', t('inboxes.editFor', { name: i.name || i.key }));
    });
  }
  /** The chatflow's inbox choice: for an admin, every inbox of the team. */
  function refreshInboxChoice() {
    if (!S.team) return;
    S.team.inboxes.forEach(function (i) { if (S.inboxes.indexOf(i.key) < 0) S.inboxes.push(i.key); });
    var sel = $('cf-inbox');
    if ($('settings-view').hidden || sel.options.length === S.inboxes.length) return;
    var v = sel.value;
    sel.textContent = '';
    S.inboxes.forEach(function (k) { sel.appendChild(h('option', { value: k, text: k })); });
    sel.value = v;
  }

  /** Sends an admin frame for the dialog `dialog`; `busy` names what waits for an answer. */
  function adminSend(frame, busy, dialog, errorEl) {
    if (S.admin.busy) return false;
    errorEl.hidden = true;
    if (!send(frame)) return false;
    S.admin.busy = busy; S.admin.dialog = dialog; S.admin.errorEl = errorEl;
    dialog.querySelectorAll('[type=submit], #confirm-ok').forEach(function (b) { b.disabled = true; });
    return true;
  }
  function onAdminError(f) {
    if (!S.admin.busy) return false;
    var el = S.admin.errorEl, d = S.admin.dialog;
    S.admin.busy = null; S.admin.toast = null;
    if (d) d.querySelectorAll('[type=submit], #confirm-ok').forEach(function (b) { b.disabled = false; });
    if (!el || !d || !d.open) { toast(errorText(f, S.admin.context), true); return true; }
    setText(el, errorText(f, S.admin.context));
    el.hidden = false;
    return true;
  }
  function showFormError(el, text) { setText(el, text); el.hidden = false; }
  document.querySelectorAll('.dialog-cancel').forEach(function (b) {
    b.addEventListener('click', function () { b.closest('dialog').close(); });
  });
  // A dialog closed while waiting: the answer still updates the lists, nothing else.
  ['agent-dialog', 'inbox-dialog', 'confirm-dialog', 'invite-dialog'].forEach(function (id) {
    $(id).addEventListener('close', function () {
      if (S.admin.dialog === $(id)) { S.admin.dialog = null; S.admin.errorEl = null; }
      if (id === 'invite-dialog') { $('invite-link').value = ''; setText($('invite-status'), ''); }
      if (!document.querySelector('dialog[open]') && S.admin.opener && S.admin.opener.isConnected) S.admin.opener.focus();
    });
  });

  // -- agents
  function openAgentDialog(a) {
    if (!S.team) return;
    S.admin.opener = document.activeElement;
    S.admin.editing = a ? a.id : null;
    S.admin.context = 'agent';
    setText($('agent-dialog-title'), a ? t('team.editFor', { name: a.name }) : t('team.addTitle'));
    setText($('agent-save'), a ? t('save') : t('team.create'));
    $('agent-name').value = a ? a.name : '';
    $('agent-display').value = a && a.display_name ? a.display_name : '';
    $('agent-role').value = a ? a.role : 'agent';
    // Nobody demotes themselves (the team keeps the admin who could undo it).
    $('agent-role').disabled = !!(a && isMe(a));
    var box = $('agent-inboxes');
    Array.prototype.slice.call(box.querySelectorAll('label')).forEach(function (l) { l.remove(); });
    S.team.inboxes.forEach(function (i) {
      var on = a ? (a.inboxes || []).indexOf(i.key) >= 0 : S.team.inboxes.length === 1;
      box.appendChild(h('label', { class: 'check' }, [
        h('input', { type: 'checkbox', value: i.key, checked: on, 'data-testid': 'agent-inbox-' + i.key }),
        h('span', { text: (i.name || i.key) + ' (' + i.key + ')' })
      ]));
    });
    $('agent-error').hidden = true;
    $('agent-save').disabled = false;
    $('agent-dialog').showModal();
    $('agent-name').focus();
  }
  $('agent-add').addEventListener('click', function () { openAgentDialog(null); });
  $('agent-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var name = $('agent-name').value.trim(), display = $('agent-display').value.trim();
    if (!name || name.length > 100 || display.length > 100) {
      showFormError($('agent-error'), t('team.nameNeeded'));
      $(!name || name.length > 100 ? 'agent-name' : 'agent-display').focus();
      return;
    }
    var inboxes = Array.prototype.slice.call($('agent-inboxes').querySelectorAll('input:checked')).map(function (c) { return c.value; });
    var role = $('agent-role').value;
    var a = S.admin.editing && teamAgent(S.admin.editing);
    S.admin.context = 'agent';
    if (!a) {
      adminSend({ type: 'create_agent', name: name, display_name: display || null, role: role, inboxes: inboxes },
        'create', $('agent-dialog'), $('agent-error'));
      return;
    }
    // Only what changed: a new role or inboxes reconnects that agent (4010).
    var frame = { type: 'update_agent', agent_id: a.id };
    if (name !== a.name) frame.name = name;
    if ((display || null) !== (a.display_name || null)) frame.display_name = display || null;
    if (role !== a.role && !isMe(a)) frame.role = role;
    if (inboxes.slice().sort().join('\n') !== (a.inboxes || []).slice().sort().join('\n')) frame.inboxes = inboxes;
    if (Object.keys(frame).length === 2) { $('agent-dialog').close(); return; }
    S.admin.toast = t('team.saved');
    adminSend(frame, 'update', $('agent-dialog'), $('agent-error'));
  });
  function reissueInvite(a) {
    if (!a) return;
    S.admin.opener = document.activeElement;
    S.admin.context = 'agent';
    // No dialog waits: an error is a toast.
    if (!S.admin.busy && send({ type: 'reissue_invite', agent_id: a.id })) { S.admin.busy = 'invite'; S.admin.dialog = null; S.admin.errorEl = null; }
  }
  /** The invite link, shown once: the token exists only in this frame. */
  function onAgentCreated(f) {
    if ($('agent-dialog').open) $('agent-dialog').close();
    S.admin.busy = null; S.admin.dialog = null;
    var a = f.agent || {};
    var url = location.origin + (f.invite || '');
    setText($('invite-title'), t('invite.title', { name: a.name || '' }));
    $('invite-link').value = url;
    setText($('invite-status'), '');
    if (!$('invite-dialog').open) $('invite-dialog').showModal();
    $('invite-link').focus();
    $('invite-link').select();
  }
  $('invite-copy').addEventListener('click', function () {
    var input = $('invite-link');
    var ok = function () { setText($('invite-status'), t('invite.copied')); $('invite-status').className = 'form-status good'; };
    var manual = function () {
      input.focus(); input.select();
      var copied = false;
      try { copied = document.execCommand('copy'); } catch (e) { copied = false; }
      if (copied) ok(); else { setText($('invite-status'), t('invite.copyFailed')); $('invite-status').className = 'form-status'; }
    };
    if (navigator.clipboard && navigator.clipboard.writeText) navigator.clipboard.writeText(input.value).then(ok, manual);
    else manual();
  });
  function confirmRevoke(a) {
    if (!a) return;
    S.admin.opener = document.activeElement;
    S.admin.context = 'agent';
    S.admin.revoking = a.id;
    setText($('confirm-title'), t('team.revokeTitle', { name: a.name }));
    setText($('confirm-text'), t('team.revokeText', { name: a.name }));
    setText($('confirm-ok'), t('team.revokeOk'));
    $('confirm-error').hidden = true;
    $('confirm-ok').disabled = false;
    $('confirm-dialog').showModal();
    // The safe choice has the focus.
    $('confirm-dialog').querySelector('.dialog-cancel').focus();
  }
  $('confirm-ok').addEventListener('click', function () {
    var a = teamAgent(S.admin.revoking);
    if (!a) { $('confirm-dialog').close(); return; }
    S.admin.toast = t('team.revokedToast', { name: a.name });
    adminSend({ type: 'revoke_agent', agent_id: a.id }, 'revoke', $('confirm-dialog'), $('confirm-error'));
  });

  // -- inboxes
  var KEY_RE = /^[A-Za-z0-9_-]{1,64}$/;
  var ORIGIN_RE = /^https?:\/\/[^\/\s?#@]+$/i;
  var COLOR_RE = /^#[0-9a-fA-F]{6}$/;
  function openInboxDialog(i) {
    S.admin.opener = document.activeElement;
    S.admin.editingInbox = i ? i.key : null;
    S.admin.context = i ? 'inboxEdit' : 'inbox';
    var w = (i && i.widget) || {};
    setText($('inbox-dialog-title'), i ? t('inboxes.editFor', { name: i.name || i.key }) : t('inboxes.addTitle'));
    setText($('inbox-save'), i ? t('save') : t('inboxes.create'));
    $('inbox-key-field').hidden = !!i;
    $('inbox-widget-fields').hidden = !i;
    $('inbox-key').value = '';
    $('inbox-name').value = i ? i.name || '' : '';
    $('inbox-origins').value = i ? (i.origins || []).join('\n') : '';
    $('inbox-title').value = w.title || '';
    $('inbox-color-text').value = w.color || '';
    $('inbox-color').value = w.color || '#4f46e5';
    $('inbox-greeting').value = w.greeting || '';
    $('inbox-error').hidden = true;
    $('inbox-save').disabled = false;
    $('inbox-dialog').showModal();
    $(i ? 'inbox-name' : 'inbox-key').focus();
  }
  $('inbox-add').addEventListener('click', function () { openInboxDialog(null); });
  $('inbox-color').addEventListener('input', function () { $('inbox-color-text').value = $('inbox-color').value; });
  $('inbox-color-text').addEventListener('input', function () {
    var v = $('inbox-color-text').value.trim();
    if (COLOR_RE.test(v)) $('inbox-color').value = v.toLowerCase();
  });
  $('inbox-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var editing = S.admin.editingInbox;
    var key = $('inbox-key').value.trim(), name = $('inbox-name').value.trim();
    var origins = $('inbox-origins').value.split(/\n/).map(function (o) { return o.trim().replace(/\/+$/, ''); }).filter(Boolean);
    var color = $('inbox-color-text').value.trim();
    var fail = function (id, text) { showFormError($('inbox-error'), text); $(id).focus(); };
    if (!editing && !KEY_RE.test(key)) return fail('inbox-key', t('inboxes.keyBad'));
    if (!name || name.length > 100) return fail('inbox-name', t('team.nameNeeded'));
    if (origins.length > 50) return fail('inbox-origins', t('inboxes.tooMany'));
    if (!origins.every(function (o) { return ORIGIN_RE.test(o); })) return fail('inbox-origins', t('inboxes.originBad'));
    if (editing && color && !COLOR_RE.test(color)) return fail('inbox-color-text', t('inboxes.colorBad'));
    S.admin.context = editing ? 'inboxEdit' : 'inbox';
    if (!editing) {
      S.admin.toast = t('inboxes.created', { name: name });
      adminSend({ type: 'create_inbox', key: key, name: name, origins: origins }, 'update', $('inbox-dialog'), $('inbox-error'));
      return;
    }
    S.admin.toast = t('team.saved');
    adminSend({
      type: 'update_inbox', inbox: editing, name: name, origins: origins,
      widget: {
        title: $('inbox-title').value.trim() || null,
        color: color ? color.toLowerCase() : null,
        greeting: $('inbox-greeting').value.trim() || null
      }
    }, 'update', $('inbox-dialog'), $('inbox-error'));
  });

  // ---- language choice ---------------------------------------------------------------------
  /** Switches the page to `choice` ('' = the browser's language) and remembers it here. */
  function setLang(choice) {
    setPref(LANG_KEY, choice || null);
    LANG = pickLang();
    translatePage();
    renderTitle();
    renderAlertControls();
    renderSigninError();
    if (S.conn) setText($('conn-text'), t(S.conn));
    if (S.agent) $('me-role').textContent = t(S.agent.role === 'admin' ? 'role.admin' : 'role.agent');
    renderList();
    if (S.openId) { renderThreadHead(); renderTyping(); renderDays(); }
    languageChanged.forEach(function (fn) { fn(); });
  }
  document.querySelectorAll('.lang-select').forEach(function (sel) {
    sel.addEventListener('change', function () { setLang(sel.value); sel.focus(); });
  });

  // ---- start -----------------------------------------------------------------------------
  LANG = pickLang();
  translatePage();
  renderTitle();
  renderAlertControls();
  renderList();
  // Tokens were once kept in the tab's storage; never any more.
  try { sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* ignore */ }
  /** An invite link (/inbox#invite=TOKEN): the token leaves the URL before anything
   * else happens (history, bookmarks, screenshots), then signs the browser in. */
  function takeInvite() {
    var m = /(?:^#|&)invite=([^&]+)/.exec(location.hash);
    if (!m) return false;
    history.replaceState(null, '', location.pathname + location.search);
    var token;
    try { token = decodeURIComponent(m[1]); } catch (e) { token = m[1]; }
    if (S.phase === 'app' || S.ws) resetApp();
    S.phase = 'invite';
    startSession(token, true);
    return true;
  }
  window.addEventListener('hashchange', takeInvite);
  if (!takeInvite()) {
    // A browser already signed in has its cookie: try it before showing the form.
    S.phase = 'probe';
    connect();
  }
})();
