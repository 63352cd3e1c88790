from .async_base_client import AsyncBaseClient
from .base_model import BaseModel, Upload
from .chat import Chat, ChatChat
from .chat_events import ChatEvents, ChatEventsChatEvents, ChatEventsChatEventsChat
from .chat_message_events import (
    ChatMessageEvents,
    ChatMessageEventsChatMessages,
    ChatMessageEventsChatMessagesMessage,
)
from .chat_messages import ChatMessages, ChatMessagesChat, ChatMessagesChatMessages
from .chats import (
    Chats,
    ChatsChats,
    ChatsChatsEdges,
    ChatsChatsEdgesNode,
    ChatsChatsPageInfo,
)
from .claim_chat import ClaimChat, ClaimChatClaimChat
from .client import GeneratedClient
from .complete_chat import CompleteChat, CompleteChatCompleteChat
from .convert_chat_to_ticket import (
    ConvertChatToTicket,
    ConvertChatToTicketConvertChatToTicket,
)
from .create_contact import CreateContact, CreateContactCreateContact
from .desk_information import DeskInformation, DeskInformationDeskInformation
from .enums import (
    AgentRole,
    AttachmentStatus,
    ButtonLanguage,
    ChannelKind,
    ChannelStatus,
    ChatStatus,
    ChatToTicketRule,
    CompletionReason,
    DeliveryMethod,
    DeliveryState,
    LineMode,
    LinePlan,
    MappingMode,
    MessageDirection,
    MessageKind,
    MissedCloseWindow,
    RecentTicketsScope,
    SendWindowState,
    TicketPriority,
    TicketStatus,
)
from .exceptions import (
    GraphQLClientError,
    GraphQLClientGraphQLError,
    GraphQLClientGraphQLMultiError,
    GraphQLClientHttpError,
    GraphQLClientInvalidResponseError,
)
from .fragments import (
    ChatFields,
    ChatFieldsEndUser,
    MessageFields,
    MessageFieldsAttachments,
    TicketFields,
)
from .input_types import (
    ChannelTimersInput,
    ChatFilterInput,
    ContactInput,
    ConvertChatInput,
    CreateAgentInput,
    CreateLineChannelInput,
    CreateWechatChannelInput,
    LinkHelpdeskInput,
    LoginInput,
    UpdateAgentInput,
    UpdateLineChannelInput,
    UpdateWechatChannelInput,
)
from .link_chat_to_contact import LinkChatToContact, LinkChatToContactLinkChatToContact
from .login import Login, LoginLogin, LoginLoginAgent
from .mark_chat_read import MarkChatRead, MarkChatReadMarkChatRead
from .me import Me, MeMe
from .merge_chat_into_ticket import (
    MergeChatIntoTicket,
    MergeChatIntoTicketMergeChatIntoTicket,
)
from .recent_tickets import RecentTickets, RecentTicketsRecentTickets
from .search_tickets import SearchTickets, SearchTicketsSearchTickets
from .send_image import SendImage, SendImageSendImage
from .send_message import SendMessage, SendMessageSendMessage
from .set_ticket_status import SetTicketStatus, SetTicketStatusSetTicketStatus
from .ticket_classifications import TicketClassifications
from .transfer_chat import TransferChat, TransferChatTransferChat

__all__ = [
    "AgentRole",
    "AsyncBaseClient",
    "AttachmentStatus",
    "BaseModel",
    "ButtonLanguage",
    "ChannelKind",
    "ChannelStatus",
    "ChannelTimersInput",
    "Chat",
    "ChatChat",
    "ChatEvents",
    "ChatEventsChatEvents",
    "ChatEventsChatEventsChat",
    "ChatFields",
    "ChatFieldsEndUser",
    "ChatFilterInput",
    "ChatMessageEvents",
    "ChatMessageEventsChatMessages",
    "ChatMessageEventsChatMessagesMessage",
    "ChatMessages",
    "ChatMessagesChat",
    "ChatMessagesChatMessages",
    "ChatStatus",
    "ChatToTicketRule",
    "Chats",
    "ChatsChats",
    "ChatsChatsEdges",
    "ChatsChatsEdgesNode",
    "ChatsChatsPageInfo",
    "ClaimChat",
    "ClaimChatClaimChat",
    "CompleteChat",
    "CompleteChatCompleteChat",
    "CompletionReason",
    "ContactInput",
    "ConvertChatInput",
    "ConvertChatToTicket",
    "ConvertChatToTicketConvertChatToTicket",
    "CreateAgentInput",
    "CreateContact",
    "CreateContactCreateContact",
    "CreateLineChannelInput",
    "CreateWechatChannelInput",
    "DeliveryMethod",
    "DeliveryState",
    "DeskInformation",
    "DeskInformationDeskInformation",
    "GeneratedClient",
    "GraphQLClientError",
    "GraphQLClientGraphQLError",
    "GraphQLClientGraphQLMultiError",
    "GraphQLClientHttpError",
    "GraphQLClientInvalidResponseError",
    "LineMode",
    "LinePlan",
    "LinkChatToContact",
    "LinkChatToContactLinkChatToContact",
    "LinkHelpdeskInput",
    "Login",
    "LoginInput",
    "LoginLogin",
    "LoginLoginAgent",
    "MappingMode",
    "MarkChatRead",
    "MarkChatReadMarkChatRead",
    "Me",
    "MeMe",
    "MergeChatIntoTicket",
    "MergeChatIntoTicketMergeChatIntoTicket",
    "MessageDirection",
    "MessageFields",
    "MessageFieldsAttachments",
    "MessageKind",
    "MissedCloseWindow",
    "RecentTickets",
    "RecentTicketsRecentTickets",
    "RecentTicketsScope",
    "SearchTickets",
    "SearchTicketsSearchTickets",
    "SendImage",
    "SendImageSendImage",
    "SendMessage",
    "SendMessageSendMessage",
    "SendWindowState",
    "SetTicketStatus",
    "SetTicketStatusSetTicketStatus",
    "TicketClassifications",
    "TicketFields",
    "TicketPriority",
    "TicketStatus",
    "TransferChat",
    "TransferChatTransferChat",
    "UpdateAgentInput",
    "UpdateLineChannelInput",
    "UpdateWechatChannelInput",
    "Upload",
]
